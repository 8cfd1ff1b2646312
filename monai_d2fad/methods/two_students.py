"""The two-student model as a detector: the decoder student's local score (its cosine discrepancy map) and the
encoder student's semantic score (its last class token's discrepancy), joined by Noisy-OR."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from monai.utils import look_up_option
from torch.utils.data import Dataset

from monai_d2fad.engines.trainer import DistillationTrainer
from monai_d2fad.losses import STUDENTS, TwoStudentsLoss, encoder_discrepancy
from monai_d2fad.methods.base import Detection
from monai_d2fad.methods.students import TrainedStudentsDetector, train_students
from monai_d2fad.networks.two_students import TwoStudents, TwoStudentsOutput, TwoStudentsPair
from monai_d2fad.scoring import anomaly_map, cosine_distance, image_score, noisy_or

__all__ = ["AGGREGATIONS", "CLASS_TOKENS", "TwoStudentsDetector", "TwoStudentsQueries", "TwoStudentsTraining"]

AGGREGATIONS = ("noisy_or", "sum")  # how the local and semantic scores are joined at inference
CLASS_TOKENS = ("last", "all")  # which class tokens give the semantic score at inference


@dataclass
class TwoStudentsQueries:
    """Encoded queries: the images (the encoder student reads them) and the teacher's patch grids and class tokens."""

    images: torch.Tensor
    grids: list[torch.Tensor]
    classes: list[torch.Tensor]


@dataclass
class TwoStudentsTraining:
    """How the two students are trained: the joint objective (``TwoStudentsLoss``) and the paper's optimiser, AdamW
    with AMSGrad (lr 2e-3, weight decay 1e-4, eps 1e-10; the paper's StableAdamW is AdamW with update clipping), batch
    size 8."""

    objective: str = "noisy_or"
    students: str = "both"
    learning_rate: float = 2e-3
    batch_size: int = 8

    def loss(self) -> TwoStudentsLoss:
        return TwoStudentsLoss(self.objective, self.students)

    def optimizer(self, network: TwoStudents) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            network.student.parameters(), lr=self.learning_rate, weight_decay=1e-4, eps=1e-10, amsgrad=True
        )


def train_two_students(
    network: TwoStudents,
    data: Dataset,
    epochs: int = 1,
    training: TwoStudentsTraining | None = None,
    progress: bool = False,
    epoch_length: int | None = None,
) -> DistillationTrainer:
    """``train_students`` with the two-student training (default ``TwoStudentsTraining()``)."""
    return train_students(network, data, training or TwoStudentsTraining(), epochs, progress, epoch_length)


class TwoStudentsDetector(TrainedStudentsDetector[TwoStudentsQueries]):
    """Trained students (multi-class or one task's), or students trained on each reference set (few-shot); see
    ``TrainedStudentsDetector``. The score is the Noisy-OR ``(1 - exp(-s_local)) (1 - exp(-s_semantic))``. The map
    is the decoder's, rescaled (Noisy-OR) or shifted (sum) so that its ``image_score`` is the joint score: every app
    that scores from maps (predict, Deploy, Label, bundle inference) gives the same number.

    Args:
        model: a ``TwoStudents``.
        image_score: how the decoder's map gives ``s_local``: its ``max`` (default) or ``mean``.
        students: ``both`` (the paper), or one alone (``decoder``, ``encoder``): the ablation.
        aggregation: ``noisy_or`` (the paper) or ``sum`` (``s_local + s_semantic``, the ablation).
        class_tokens: ``last`` (the paper's inference: the final class token) or ``all`` (every layer's, as trained).
        training: the few-shot and folder fits' training (default ``TwoStudentsTraining()``).
        other arguments: as ``TrainedStudentsDetector``'s.
    """

    def __init__(
        self,
        model: TwoStudents,
        image_score: str | None = None,
        students: str = "both",
        aggregation: str = "noisy_or",
        class_tokens: str = "last",
        train_on_references: bool = False,
        steps: int = 200,
        epochs: int = 10,
        training: TwoStudentsTraining | None = None,
        seed: int = 0,
        sigma: float = 4.0,
    ):
        super().__init__(
            model, training or TwoStudentsTraining(), image_score or "max", train_on_references, steps, epochs, seed,
            sigma,
        )  # fmt: skip
        self.students = look_up_option(students, STUDENTS)
        self.aggregation = look_up_option(aggregation, AGGREGATIONS)
        self.class_tokens = look_up_option(class_tokens, CLASS_TOKENS)

    def encode(self, images: torch.Tensor) -> TwoStudentsQueries:
        images = images.to(self.device)
        grids, classes = self.model.teacher.token_layers(images)
        return TwoStudentsQueries(images, grids, classes)

    def detect(self, encoded: TwoStudentsQueries, state: TwoStudentsPair, size: tuple[int, int]) -> Detection:
        state.eval()
        targets, rebuilt = state.decoder(encoded.grids)
        _, student_classes = state.encoder.token_layers(encoded.images)
        output = TwoStudentsOutput(targets, rebuilt, encoded.classes, student_classes)
        maps = anomaly_map([cosine_distance(t, s) for t, s in zip(targets, rebuilt)], size, sigma=self.sigma)
        local, semantic = image_score(maps, self.image_score), encoder_discrepancy(output, self.class_tokens)
        if self.students == "encoder":
            return Detection(semantic, semantic.view(-1, 1, 1, 1).expand_as(maps).contiguous())
        if self.students == "decoder":
            return Detection(local, maps)
        if self.aggregation == "sum":
            return Detection(local + semantic, maps + semantic.view(-1, 1, 1, 1))
        scores = noisy_or([local, semantic])
        return Detection(scores, maps * (scores / local.clamp_min(1e-12)).view(-1, 1, 1, 1))
