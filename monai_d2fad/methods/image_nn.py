"""Image-level nearest-neighbour baseline: cosine distance of pooled teacher features to the nearest reference."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from monai_d2fad.methods.base import Detection, FrozenTeacherDetector

__all__ = ["ImageNearestNeighbour"]


class ImageNearestNeighbour(FrozenTeacherDetector[torch.Tensor, torch.Tensor]):
    """One descriptor per image: every teacher scale global-average-pooled, L2-normalised and concatenated.

    The score is ``1 - cos`` to the nearest of the K references; there is no anomaly map (the map returned is the
    score everywhere, so that callers need no special case).
    """

    @torch.inference_mode()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Unit descriptors ``[B, D]``."""
        pooled = [F.normalize(f.mean((-2, -1)), dim=1) for f in self.teacher(images.to(self.device))]
        return F.normalize(torch.cat(pooled, dim=1), dim=1)

    def fit(self, support: torch.Tensor) -> torch.Tensor:
        return self.encode(support)

    @torch.inference_mode()
    def detect(self, encoded: torch.Tensor, state: torch.Tensor, size: tuple[int, int]) -> Detection:
        scores = (1 - encoded @ state.T).amin(1)
        return Detection(scores, scores.view(-1, 1, 1, 1).expand(-1, 1, *size))
