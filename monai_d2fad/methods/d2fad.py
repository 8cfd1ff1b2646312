"""A trained D²4FAD as a ``FewShotMethod``."""

from __future__ import annotations

import torch

from monai_d2fad.inference import FewShotDetector
from monai_d2fad.methods.base import FewShotMethod
from monai_d2fad.networks.d2fad import D2FAD
from monai_d2fad.scoring import global_discrepancy, image_score

__all__ = ["D2FADMethod"]


class D2FADMethod(FewShotMethod):
    """Scores with ``FewShotDetector``: student features of the queries once, cached references per set.

    Args:
        model: a trained ``D2FAD``.
        image_score: override the model's ``mean``/``max`` image score.
        global_weight: this project's extension, not the paper's method: add ``global_weight`` times the
            image-level discrepancy of the teacher's features (``scoring.global_discrepancy``) to the map's score.
            0 (default) is the paper's D²4FAD. The protocol chooses it on the training tasks' ``val`` splits.

    ``encode`` gives the queries' student and teacher features; ``fit`` the references' student features,
    learn-to-weight keys and teacher features.
    """

    def __init__(
        self,
        model: D2FAD,
        image_score: str | None = None,
        device: str | torch.device = "cpu",
        global_weight: float = 0.0,
    ):
        super().__init__(device)
        self.detector = FewShotDetector(model.to(self.device), image_score)
        self.global_weight = float(global_weight)

    @torch.inference_mode()
    def encode(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        teacher, student = self.detector.model.encode(images.to(self.device))
        return student, teacher

    @torch.inference_mode()
    def fit(self, support: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        teacher, student = self.detector.model.encode(support.to(self.device))  # one pass for both
        return *self.detector.support_from_student(student), teacher

    @torch.inference_mode()
    def score_parts(self, encoded, state, size) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The map's image score ``[B]``, the global discrepancy ``[B]`` and the maps ``[B, 1, H, W]``."""
        maps = self.detector.maps_from_student(encoded[0], *state[:2], size)
        return image_score(maps, self.detector.image_score), global_discrepancy(encoded[1], state[2]), maps

    @torch.inference_mode()
    def score(self, encoded, state, size):
        local, image_level, maps = self.score_parts(encoded, state, size)
        return local + self.global_weight * image_level, maps

    @torch.inference_mode()
    def support_weights(self, encoded, state) -> torch.Tensor:
        """Learn-to-weight weights ``[B, K]``, averaged over the scales."""
        l2w = self.detector.model.l2w
        weights = [l2w.weights(i, q, k) for i, (q, k) in enumerate(zip(encoded[0], state[1]))]
        return torch.stack(weights).mean(0)
