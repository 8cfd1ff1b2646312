"""PDD as a detector: the two students' discrepancy maps against the unified manifold of the two teachers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from monai.utils import look_up_option
from torch.utils.data import Dataset

from monai_d2fad.engines.trainer import DistillationTrainer
from monai_d2fad.losses import PDD_STUDENTS, PDDLoss, pdd_student_maps
from monai_d2fad.methods.base import Detection
from monai_d2fad.methods.students import TrainedStudentsDetector, train_students
from monai_d2fad.networks.pdd import PDD, PDDStudents
from monai_d2fad.scoring import anomaly_map, image_score

__all__ = ["PDDDetector", "PDDQueries", "PDDTraining", "train_pdd"]


@dataclass
class PDDTraining:
    """How PDD's trainable part is trained: ``PDDLoss`` and RD4AD's optimiser, Adam with lr 5e-3 and betas
    (0.5, 0.999) (the abstract names none; 5e-3 beat 1e-3 on the training tasks' ``val`` splits, docs/methods/PDD.md),
    batch size 8."""

    diversity_weight: float = 0.1
    mmu_weight: float = 1.0
    students: str = "both"
    learning_rate: float = 5e-3
    batch_size: int = 8

    def loss(self) -> PDDLoss:
        return PDDLoss(self.diversity_weight, self.mmu_weight, self.students)

    def optimizer(self, network: PDD) -> torch.optim.Optimizer:
        return torch.optim.Adam(network.student.parameters(), lr=self.learning_rate, betas=(0.5, 0.999))


def train_pdd(
    network: PDD,
    data: Dataset,
    epochs: int = 1,
    training: PDDTraining | None = None,
    progress: bool = False,
    epoch_length: int | None = None,
) -> DistillationTrainer:
    """``train_students`` with PDD's training (default ``PDDTraining()``)."""
    return train_students(network, data, training or PDDTraining(), epochs, progress, epoch_length)


@dataclass
class PDDQueries:
    """Encoded queries: the images (student 2 reads them) and both teachers' maps."""

    images: torch.Tensor
    features: list[list[torch.Tensor]]


class PDDDetector(TrainedStudentsDetector[PDDQueries]):
    """Trained PDD students (a task's), or students trained on each reference set (few-shot); see
    ``TrainedStudentsDetector``. The map is the mean of the two students' maps (``1 - cos`` against the unified
    manifold at each level, upsampled, summed over levels, blurred).

    Args:
        model: a ``PDD``.
        image_score: ``mean`` (default: chosen on ``val``, where the maximum was unstable) or ``max`` of the map.
        students: ``both`` (the paper), or one alone (``student1``, ``student2``): the ablation.
        training: the few-shot and folder fits' training (default ``PDDTraining()``).
        other arguments: as ``TrainedStudentsDetector``'s.
    """

    def __init__(
        self,
        model: PDD,
        image_score: str | None = None,
        students: str = "both",
        train_on_references: bool = False,
        steps: int = 200,
        epochs: int = 10,
        training: PDDTraining | None = None,
        seed: int = 0,
        sigma: float = 4.0,
    ):
        super().__init__(
            model, training or PDDTraining(), image_score or "mean", train_on_references, steps, epochs, seed, sigma
        )
        self.students = look_up_option(students, PDD_STUDENTS)

    def encode(self, images: torch.Tensor) -> PDDQueries:
        """The queries and both teachers' maps of them (computed once for every reference set)."""
        images = images.to(self.device)
        return PDDQueries(images, self.model.teacher(images))

    def detect(self, encoded: PDDQueries, state: PDDStudents, size: tuple[int, int]) -> Detection:
        state.eval()
        maps1, maps2 = pdd_student_maps(state(encoded.features, encoded.images))
        distances = {"student1": maps1, "student2": maps2}.get(self.students)
        if distances is None:
            distances = [(a + b) / 2 for a, b in zip(maps1, maps2)]
        maps = anomaly_map(distances, size, sigma=self.sigma)
        return Detection(image_score(maps, self.image_score), maps)
