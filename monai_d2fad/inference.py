"""Few-shot detector: encode the K normal references of a task once, then score queries with one pass each."""

from __future__ import annotations

import torch

from monai_d2fad.networks.d2fad import D2FAD
from monai_d2fad.scoring import image_score

__all__ = ["FewShotDetector"]


class FewShotDetector:
    """Scores queries against a cached support set.

    The official evaluation re-encodes the K supports for every batch (K + 1 passes per query); supports are fixed
    per task, so here their student features and learn-to-weight keys are computed once in ``set_support``.

    Args:
        model: a trained ``D2FAD``; it is put in eval mode.
        image_score: override the model's ``mean``/``max`` image score.
    """

    def __init__(self, model: D2FAD, image_score: str | None = None):
        self.model = model.eval()
        self.image_score = image_score or model.config["image_score"]
        self.support_features: list[torch.Tensor] | None = None
        self.support_keys: list[torch.Tensor] | None = None
        self.support_size: tuple[int, int] | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.student.parameters()).device

    @torch.inference_mode()
    def set_support(self, support: torch.Tensor) -> FewShotDetector:
        """Encode and cache the normal references ``[K, 3, H, W]`` (RGB in [0, 1])."""
        if support.dim() != 4 or support.shape[0] < 1:
            raise ValueError(f"support must be [K, 3, H, W] with K >= 1, got {tuple(support.shape)}")
        _, student = self.model.encode(support.to(self.device))
        self.support_features = [f.unsqueeze(0) for f in student]  # [1, K, C, H, W]: shared by every query
        self.support_keys = [self.model.l2w.keys(i, f) for i, f in enumerate(self.support_features)]
        self.support_size = tuple(support.shape[-2:])
        return self

    @torch.inference_mode()
    def score(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores ``[B]`` and anomaly maps ``[B, 1, H, W]`` of queries ``[B, 3, H, W]``."""
        if self.support_features is None:
            raise RuntimeError("call set_support(normal_images) before score()")
        if tuple(query.shape[-2:]) != self.support_size:
            raise ValueError(f"query size {tuple(query.shape[-2:])} differs from the support size {self.support_size}")
        _, student = self.model.encode(query.to(self.device))
        l2w = self.model.l2w
        weights = [l2w.weights(i, q, k) for i, (q, k) in enumerate(zip(student, self.support_keys))]
        maps = self.model.anomaly_map(student, self.support_features, weights, self.support_size)
        return image_score(maps, self.image_score), maps
