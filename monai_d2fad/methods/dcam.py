"""DCAM as a detector: a mirrored student trained on normal images, scored by its multi-scale discrepancy with the
teacher (STFPM's map), with DCAM's attention and losses during training only."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from monai_d2fad.engines.trainer import DistillationTrainer
from monai_d2fad.losses import DCAMLoss
from monai_d2fad.methods.base import Detection
from monai_d2fad.methods.students import TrainedStudentsDetector, image_items, train_students
from monai_d2fad.networks.dcam import DCAM, DCAMStudent
from monai_d2fad.scoring import anomaly_map, cosine_distance, image_score

__all__ = ["DCAMDetector", "DCAMQueries", "DCAMTraining", "image_items", "train_dcam"]


@dataclass
class DCAMQueries:
    """Encoded queries: the images (the student reads them per fitted state) and the teacher's three scales."""

    images: torch.Tensor
    teacher: list[torch.Tensor]


@dataclass
class DCAMTraining:
    """How a DCAM student is trained: the losses (``DCAMLoss``) and STFPM's optimiser (SGD, momentum 0.9, weight
    decay 1e-4) at this project's learning rate (docs/methods/DCAM.md says how it was chosen)."""

    cd: str = "channel"
    kd: str = "spatial"
    kd_weight: float = 1.0
    temperature: float = 1.0
    learning_rate: float = 0.05
    batch_size: int = 16

    def loss(self) -> DCAMLoss:
        return DCAMLoss(self.cd, self.kd, self.kd_weight, self.temperature)

    def optimizer(self, network: DCAM) -> torch.optim.Optimizer:
        return torch.optim.SGD(network.student.parameters(), lr=self.learning_rate, momentum=0.9, weight_decay=1e-4)


def train_dcam(
    network: DCAM,
    data: Dataset,
    epochs: int = 1,
    training: DCAMTraining | None = None,
    progress: bool = False,
    epoch_length: int | None = None,
) -> DistillationTrainer:
    """``train_students`` with DCAM's training (default ``DCAMTraining()``)."""
    return train_students(network, data, training or DCAMTraining(), epochs, progress, epoch_length)


class DCAMDetector(TrainedStudentsDetector[DCAMQueries]):
    """A trained DCAM, or DCAM trained on each reference set (few-shot); see ``TrainedStudentsDetector``.

    Args:
        model: a ``DCAM``.
        image_score: ``max`` of the map (STFPM, default) or ``mean``.
        training: losses and optimiser of the few-shot and folder fits (default ``DCAMTraining()``).
        other arguments: as ``TrainedStudentsDetector``'s.
    """

    def __init__(
        self,
        model: DCAM,
        image_score: str | None = None,
        train_on_references: bool = False,
        steps: int = 200,
        epochs: int = 10,
        training: DCAMTraining | None = None,
        seed: int = 0,
        sigma: float = 4.0,
    ):
        super().__init__(
            model, training or DCAMTraining(), image_score or "max", train_on_references, steps, epochs, seed, sigma
        )

    def encode(self, images: torch.Tensor) -> DCAMQueries:
        images = images.to(self.device)
        return DCAMQueries(images, self.model.teacher(images)[:3])

    def detect(self, encoded: DCAMQueries, state: DCAMStudent, size: tuple[int, int]) -> Detection:
        student, _ = state.eval()(encoded.images)
        maps = anomaly_map([cosine_distance(t, s) for t, s in zip(encoded.teacher, student)], size, sigma=self.sigma)
        return Detection(image_score(maps, self.image_score), maps)
