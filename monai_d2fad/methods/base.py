"""What every compared detector provides: encode queries once, fit to K references, score against a fit."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any

import torch

from monai_d2fad.networks.teachers import build_teacher

__all__ = ["FewShotMethod", "FrozenTeacherMethod"]


class FewShotMethod(ABC):
    """A few-shot detector split in three steps, so that one pass over the queries serves every reference set.

    The protocol scores each test image against 15 reference sets (K = 2, 4, 8 times 5 draws); the expensive
    network pass over a query batch (``encode``) runs once and ``score`` runs per set.
    """

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)

    @abstractmethod
    def encode(self, images: torch.Tensor) -> Any:
        """Features of images ``[B, 3, H, W]`` in [0, 1] (what ``score`` needs from the queries)."""

    @abstractmethod
    def fit(self, support: torch.Tensor) -> Any:
        """The state to score against, from K normal references ``[K, 3, H, W]``."""

    @abstractmethod
    def score(self, encoded: Any, state: Any, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Image scores ``[B]`` and anomaly maps ``[B, 1, H, W]`` (higher is more anomalous)."""

    def support_weights(self, encoded: Any, state: Any) -> torch.Tensor | None:
        """Weight of each reference for each query ``[B, K]``, where the method has them (learn-to-weight)."""
        return None


class FrozenTeacherMethod(FewShotMethod):
    """A method on a frozen ImageNet teacher's features, with no cross-task training (the baselines).

    Args:
        teacher, teacher_weights, teacher_normalize: the encoder, as ``networks.build_teacher`` takes them.
        device: where the teacher runs.
    """

    def __init__(
        self,
        teacher: str = "wide_resnet50_2",
        teacher_weights: str | os.PathLike | None = "imagenet",
        teacher_normalize: str | None = None,
        device: str | torch.device = "cpu",
    ):
        super().__init__(device)
        self.teacher_name = teacher
        self.teacher = build_teacher(teacher, teacher_weights, teacher_normalize).to(self.device)
