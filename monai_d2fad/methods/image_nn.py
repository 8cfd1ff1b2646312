"""Image-level nearest-neighbour baseline: cosine distance of pooled teacher features to the nearest reference."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from monai_d2fad.methods.base import FrozenTeacherMethod

__all__ = ["ImageNearestNeighbour"]


class ImageNearestNeighbour(FrozenTeacherMethod):
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
    def score(self, encoded, state, size):
        scores = (1 - encoded @ state.T).amin(1)
        return scores, scores.view(-1, 1, 1, 1).expand(-1, 1, *size)
