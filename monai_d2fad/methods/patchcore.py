"""PatchCore-style few-shot baseline (Roth et al., 2022): nearest reference patch, no training."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from monai_d2fad.methods.base import Detection, FrozenTeacherDetector
from monai_d2fad.scoring import anomaly_map

__all__ = ["PatchCore"]


class PatchCore(FrozenTeacherDetector[torch.Tensor, torch.Tensor]):
    """Distance of each query patch to its nearest patch among the K references' patches.

    Patch features are the teacher's stride-8 and stride-16 features, each averaged over its 3 x 3 neighbourhood,
    the stride-16 one upsampled, concatenated. With K <= 8 references the memory bank is small, so every patch is
    kept (no coreset subsampling). The image score is the map's maximum, as PatchCore's.

    Args:
        teacher, teacher_weights, teacher_normalize: the frozen ImageNet encoder (as ``networks.build_teacher``).
        sigma: Gaussian blur of the map, in pixels.
    """

    def __init__(
        self,
        teacher: str = "wide_resnet50_2",
        teacher_weights: str | os.PathLike | None = "imagenet",
        teacher_normalize: str | None = None,
        sigma: float = 4.0,
        device: str | torch.device = "cpu",
    ):
        super().__init__(teacher, teacher_weights, teacher_normalize, device)
        self.sigma = sigma

    @torch.inference_mode()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Patch features ``[B, C, h, w]`` at stride 8."""
        feats = self.teacher(images.to(self.device))
        mid, deep = (F.avg_pool2d(f, 3, stride=1, padding=1) for f in feats[1:3])
        deep = F.interpolate(deep, size=mid.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([mid, deep], dim=1)

    def fit(self, support: torch.Tensor) -> torch.Tensor:
        """The memory bank ``[K * h * w, C]`` of every reference patch."""
        return self.encode(support).permute(0, 2, 3, 1).flatten(0, 2)

    @torch.inference_mode()
    def detect(self, encoded: torch.Tensor, state: torch.Tensor, size: tuple[int, int]) -> Detection:
        b, _, h, w = encoded.shape
        patches = encoded.permute(0, 2, 3, 1).flatten(1, 2)  # [B, h*w, C]
        nearest = torch.cdist(patches, state.unsqueeze(0).expand(b, -1, -1)).amin(-1)  # [B, h*w]
        maps = anomaly_map([nearest.view(b, h, w)], size, sigma=self.sigma)
        return Detection(maps.flatten(1).amax(1), maps)
