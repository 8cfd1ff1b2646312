"""A trained D²4FAD as a ``FewShotMethod``."""

from __future__ import annotations

import torch

from monai_d2fad.inference import FewShotDetector
from monai_d2fad.methods.base import FewShotMethod
from monai_d2fad.networks.d2fad import D2FAD
from monai_d2fad.scoring import image_score

__all__ = ["D2FADMethod"]


class D2FADMethod(FewShotMethod):
    """Scores with ``FewShotDetector``: student features of the queries once, cached references per set.

    Args:
        model: a trained ``D2FAD``.
        image_score: override the model's ``mean``/``max`` image score.
    """

    def __init__(self, model: D2FAD, image_score: str | None = None, device: str | torch.device = "cpu"):
        super().__init__(device)
        self.detector = FewShotDetector(model.to(self.device), image_score)

    @torch.inference_mode()
    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.detector.model.encode(images.to(self.device))[1]

    @torch.inference_mode()
    def fit(self, support: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return self.detector.encode_support(support.to(self.device))

    @torch.inference_mode()
    def score(self, encoded, state, size):
        maps = self.detector.maps_from_student(encoded, *state, size)
        return image_score(maps, self.detector.image_score), maps

    @torch.inference_mode()
    def support_weights(self, encoded, state) -> torch.Tensor:
        """Learn-to-weight weights ``[B, K]``, averaged over the scales."""
        l2w = self.detector.model.l2w
        weights = [l2w.weights(i, q, k) for i, (q, k) in enumerate(zip(encoded, state[1]))]
        return torch.stack(weights).mean(0)
