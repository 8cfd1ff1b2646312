"""Detectors whose state is students trained on normal images (DCAM, the two-student model): the trained model's
students, or fresh ones trained on each reference set (few-shot) or on a task's folder of normals (full-shot)."""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol, TypeVar

import torch
from ignite.contrib.handlers import ProgressBar
from monai.data import Dataset
from monai.utils import look_up_option
from torch import nn
from torch.utils.data import DataLoader

from monai_d2fad.data.images import ImageDataset
from monai_d2fad.data.support import support_paths
from monai_d2fad.engines.trainer import DistillationTrainer
from monai_d2fad.methods.base import TaskDetector
from monai_d2fad.scoring import IMAGE_SCORES

__all__ = ["StudentTraining", "TrainedStudentsDetector", "image_items", "train_students"]

EncodedT = TypeVar("EncodedT")


class StudentTraining(Protocol):
    """How a method's students are trained: its loss, its optimiser over the students, its batch size."""

    batch_size: int

    def loss(self) -> nn.Module: ...

    def optimizer(self, network: nn.Module) -> torch.optim.Optimizer: ...


def image_items(images: torch.Tensor) -> Dataset:
    """Preprocessed images ``[N, 3, H, W]`` as a MONAI dataset of ``{"image"}`` items (``train_students``' data)."""
    return Dataset([{"image": image} for image in images])


def train_students(
    network: nn.Module,
    data: torch.utils.data.Dataset,
    training: StudentTraining,
    epochs: int = 1,
    progress: bool = False,
    epoch_length: int | None = None,
) -> DistillationTrainer:
    """Train ``network.student`` (beside its frozen ``network.teacher``) on ``data`` (``{"image"}`` items of normal
    images) with MONAI's trainer, for ``epochs`` of ``epoch_length`` iterations (default: one pass; longer ones cycle
    the data); returns the finished trainer (its ``state.output`` holds the last loss terms)."""
    device = next(network.teacher.parameters()).device
    loader = DataLoader(data, batch_size=min(training.batch_size, len(data)), shuffle=True)
    trainer = DistillationTrainer(
        device=device,
        max_epochs=epochs,
        epoch_length=epoch_length,
        train_data_loader=loader,
        network=network,
        optimizer=training.optimizer(network),
        loss_function=training.loss(),
    )
    if progress:
        ProgressBar(persist=False).attach(trainer, output_transform=lambda out: {"loss": float(out["loss"])})
    network.train()
    trainer.run()
    network.eval()
    return trainer


class TrainedStudentsDetector(TaskDetector[EncodedT, nn.Module]):
    """Base of the detectors whose state is a model's trained students (``model.student``).

    As a ``TaskDetector`` it scores the one task its trained students learnt (a registered task).

    Args:
        model: the network (``model.teacher`` frozen, ``model.student`` trainable, ``model.fresh_copy(seed)``); with
            ``train_on_references=False`` its trained students score every query and the references are not used
            (full-shot and multi-class models).
        image_score: ``max`` or ``mean`` of the map.
        train_on_references: ``fit`` trains fresh students (seeded with ``seed``) on the K references for ``steps``
            full-batch steps: the few-shot setting.
        steps: optimisation steps of a few-shot fit.
        epochs: epochs of a folder (full-shot) fit.
        training: losses and optimiser of the few-shot and folder fits (a ``StudentTraining``).
        sigma: Gaussian blur of the map, in pixels.
    """

    def __init__(
        self,
        model: nn.Module,
        training: StudentTraining,
        image_score: str = "max",
        train_on_references: bool = False,
        steps: int = 200,
        epochs: int = 10,
        seed: int = 0,
        sigma: float = 4.0,
    ):
        super().__init__()
        self.model = model.eval()
        self.image_score = look_up_option(image_score, IMAGE_SCORES)
        self.train_on_references, self.steps, self.epochs = train_on_references, steps, epochs
        self.seed, self.sigma = seed, sigma
        self.training_settings = training

    @property
    def device(self) -> torch.device:
        return next(self.model.teacher.parameters()).device

    def fit(self, support: torch.Tensor) -> nn.Module:
        """The model's students, or (few-shot) fresh ones trained on the references ``[K, 3, H, W]``."""
        if not self.train_on_references:
            return self.model.student.eval()
        network = self.model.fresh_copy(self.seed)
        training = replace(self.training_settings, batch_size=len(support))  # full batch
        train_students(network, image_items(support), training, epoch_length=self.steps)
        return network.student

    def fit_folder(self, folder: str, modality: str | None = None, image_size: int = 128) -> nn.Module:
        """Full-shot: fresh students trained on every normal image of ``folder`` for ``epochs`` epochs."""
        network = self.model.fresh_copy(self.seed)
        images = ImageDataset([{"image": p} for p in support_paths(folder)], image_size, modality)
        train_students(network, images, self.training_settings, self.epochs, progress=True)
        return network.student

    @property
    def task_state(self) -> nn.Module:
        """What this detector scores its one task with: the trained students (a registered task's state)."""
        return self.model.student
