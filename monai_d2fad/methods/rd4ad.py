"""RD4AD trained per task on its K references alone: the unsupervised route the paper compares against."""

from __future__ import annotations

from typing import Any

import torch

from monai_d2fad.methods.base import Detection, FrozenTeacherDetector
from monai_d2fad.networks.decoder import decoder_for
from monai_d2fad.scoring import anomaly_map, cosine_distance

__all__ = ["RD4ADPerTask"]


class RD4ADPerTask(FrozenTeacherDetector[list[torch.Tensor], torch.nn.Module]):
    """Reverse distillation (Deng and Li, 2022) fitted to K normal images of the task being tested.

    A fresh student (the same reverse decoder as D²4FAD's, fed the teacher's deepest feature; RD4AD's
    multi-scale bottleneck is left out) learns to rebuild the frozen teacher's three feature scales of the
    references; a query's map is the per-location ``1 - cos`` between teacher and student, summed over scales and
    blurred; its image score is the map's maximum, as RD4AD's.

    Args:
        steps: optimisation steps on the K references (full batch).
        learning_rate: Adam learning rate (RD4AD: 0.005, betas 0.5, 0.999).
        seed: seed of the student's initialisation (the same for every reference set).
        sigma: Gaussian blur of the map, in pixels.
        teacher_args: ``teacher``, ``teacher_weights``, ``teacher_normalize`` and ``device``, by keyword, as
            ``FrozenTeacherDetector`` takes them.
    """

    def __init__(
        self, steps: int = 200, learning_rate: float = 0.005, seed: int = 0, sigma: float = 4.0, **teacher_args: Any
    ):
        super().__init__(**teacher_args)
        self.steps, self.learning_rate, self.seed, self.sigma = steps, learning_rate, seed, sigma

    @torch.inference_mode()
    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Teacher features, strides 4, 8, 16 and 32."""
        return self.teacher(images.to(self.device))

    def fit(self, support: torch.Tensor) -> torch.nn.Module:
        """A student trained on the references; returned in eval mode."""
        feats = [f.clone() for f in self.encode(support)]  # out of inference mode, for autograd
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            student = decoder_for(self.teacher_name, self.teacher.channels).to(self.device)
        optimizer = torch.optim.Adam(student.parameters(), lr=self.learning_rate, betas=(0.5, 0.999))
        student.train()
        for _ in range(self.steps):
            optimizer.zero_grad(set_to_none=True)
            loss = self._discrepancy(feats, student(feats[-1])).mean()
            loss.backward()
            optimizer.step()
        return student.eval()

    @staticmethod
    def _discrepancy(teacher: list[torch.Tensor], student: list[torch.Tensor]) -> torch.Tensor:
        """Per-image mean over locations of ``1 - cos``, summed over the three scales: ``[B]``."""
        return sum(cosine_distance(t, s).flatten(1).mean(1) for t, s in zip(teacher[:3], student))

    @torch.inference_mode()
    def detect(self, encoded: list[torch.Tensor], state: torch.nn.Module, size: tuple[int, int]) -> Detection:
        distances = [cosine_distance(t, s) for t, s in zip(encoded[:3], state(encoded[-1]))]
        maps = anomaly_map(distances, size, sigma=self.sigma)
        return Detection(maps.flatten(1).amax(1), maps)
