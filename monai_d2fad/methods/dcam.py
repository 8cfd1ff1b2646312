"""DCAM as a detector: a mirrored student trained on normal images, scored by its multi-scale discrepancy with the
teacher (STFPM's map), with DCAM's attention and losses during training only."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from ignite.contrib.handlers import ProgressBar
from monai.data import Dataset
from monai.utils import look_up_option
from torch.utils.data import DataLoader

from monai_d2fad.data.images import ImageDataset
from monai_d2fad.data.support import support_paths
from monai_d2fad.engines.trainer import DistillationTrainer
from monai_d2fad.losses import DCAMLoss
from monai_d2fad.methods.base import Detection, TaskDetector
from monai_d2fad.networks.dcam import DCAM, DCAMStudent
from monai_d2fad.scoring import IMAGE_SCORES, anomaly_map, cosine_distance, image_score

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


def image_items(images: torch.Tensor) -> Dataset:
    """Preprocessed images ``[N, 3, H, W]`` as a MONAI dataset of ``{"image"}`` items (what ``train_dcam`` takes)."""
    return Dataset([{"image": image} for image in images])


def train_dcam(
    network: DCAM,
    data: torch.utils.data.Dataset,
    epochs: int = 1,
    training: DCAMTraining | None = None,
    progress: bool = False,
    epoch_length: int | None = None,
) -> DistillationTrainer:
    """Train ``network``'s student on ``data`` (``{"image"}`` items of normal images) with MONAI's trainer, for
    ``epochs`` of ``epoch_length`` iterations (default: one pass; longer ones cycle the data); returns the finished
    trainer (its ``state.output`` holds the last loss terms)."""
    training = training or DCAMTraining()
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


class DCAMDetector(TaskDetector[DCAMQueries, DCAMStudent]):
    """A trained DCAM, or DCAM trained on each reference set (few-shot).

    As a ``TaskDetector`` it scores the one task its trained student learnt (a registered task).

    Args:
        model: a ``DCAM``; with ``train_on_references=False`` its trained student scores every query and the
            references are not used (full-shot and multi-class models).
        image_score: ``max`` of the map (STFPM, default) or ``mean``.
        train_on_references: ``fit`` trains a fresh student (seeded with ``seed``) on the K references for
            ``steps`` full-batch steps: the few-shot setting.
        steps: optimisation steps of a few-shot fit.
        epochs: epochs of a folder (full-shot) fit.
        training: losses and optimiser of the few-shot and folder fits.
        sigma: Gaussian blur of the map, in pixels.
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
        super().__init__()
        self.model = model.eval()
        self.image_score = look_up_option(image_score or "max", IMAGE_SCORES)
        self.train_on_references, self.steps, self.epochs = train_on_references, steps, epochs
        self.seed, self.sigma = seed, sigma
        self.training_settings = training or DCAMTraining()

    @property
    def device(self) -> torch.device:
        return next(self.model.teacher.parameters()).device

    def encode(self, images: torch.Tensor) -> DCAMQueries:
        images = images.to(self.device)
        return DCAMQueries(images, self.model.teacher(images)[:3])

    def fit(self, support: torch.Tensor) -> DCAMStudent:
        """The model's student, or (few-shot) a fresh one trained on the references ``[K, 3, H, W]``."""
        if not self.train_on_references:
            return self.model.student.eval()
        network = self.model.fresh_copy(self.seed)
        training = replace(self.training_settings, batch_size=len(support))  # full batch
        train_dcam(network, image_items(support), training=training, epoch_length=self.steps)
        return network.student

    def fit_folder(self, folder: str, modality: str | None = None, image_size: int = 128) -> DCAMStudent:
        """Full-shot: a fresh student trained on every normal image of ``folder`` for ``epochs`` epochs."""
        network = self.model.fresh_copy(self.seed)
        images = ImageDataset([{"image": p} for p in support_paths(folder)], image_size, modality)
        train_dcam(network, images, self.epochs, self.training_settings, progress=True)
        return network.student

    @property
    def task_state(self) -> DCAMStudent:
        """What this detector scores its one task with: the trained student (a registered task's state)."""
        return self.model.student

    def detect(self, encoded: DCAMQueries, state: DCAMStudent, size: tuple[int, int]) -> Detection:
        student, _ = state.eval()(encoded.images)
        maps = anomaly_map([cosine_distance(t, s) for t, s in zip(encoded.teacher, student)], size, sigma=self.sigma)
        return Detection(image_score(maps, self.image_score), maps)
