"""The one detector interface: encode queries once, fit to K normal references, detect against a fit."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch

from monai_d2fad.data.images import read_images
from monai_d2fad.data.support import support_paths
from monai_d2fad.networks.teachers import build_teacher

__all__ = ["Detection", "Detector", "FrozenTeacherDetector", "TaskDetector"]

EncodedT = TypeVar("EncodedT")
StateT = TypeVar("StateT")


@dataclass
class Detection:
    """What a detector gives for a batch of queries.

    Attributes:
        scores: image scores ``[B]``, higher is more anomalous.
        maps: anomaly maps ``[B, 1, H, W]`` (a method without maps repeats its score over the image).
        weights: weight of each reference for each query ``[B, K]``, for methods that weigh them (learn-to-weight).
    """

    scores: torch.Tensor
    maps: torch.Tensor
    weights: torch.Tensor | None = None


class Detector(ABC, Generic[EncodedT, StateT]):
    """A few-shot detector in three steps, so that one pass over the queries serves every reference set.

    The protocol and the evaluator score each query against many reference sets (K = 2, 4, 8 times 5 draws): the
    expensive network pass over a query batch (``encode``) runs once, ``fit`` once per set, ``detect`` per pair.
    """

    @property
    @abstractmethod
    def device(self) -> torch.device:
        """Where the detector's networks run."""

    @abstractmethod
    def encode(self, images: torch.Tensor) -> EncodedT:
        """What ``detect`` needs from queries ``[B, 3, H, W]`` in [0, 1]."""

    @abstractmethod
    def fit(self, support: torch.Tensor) -> StateT:
        """The state to detect against, from K normal references ``[K, 3, H, W]``."""

    @abstractmethod
    def detect(self, encoded: EncodedT, state: StateT, size: tuple[int, int]) -> Detection:
        """Scores and ``size``-sized maps of encoded queries against a fitted state."""

    def fit_folder(self, folder: str, modality: str | None = None, image_size: int = 128) -> StateT:
        """The state from every normal image of ``folder`` (full-shot). Detectors that train on a task's normals
        override this with their training; the default fits to all of them as references."""
        return self.fit(read_images(support_paths(folder), modality, image_size))

    def detect_images(self, images: torch.Tensor, state: StateT) -> Detection:
        """``encode`` then ``detect``: queries ``[B, 3, H, W]`` against one fitted state."""
        return self.detect(self.encode(images), state, tuple(images.shape[-2:]))


class TaskDetector(torch.nn.Module, Detector[EncodedT, StateT]):
    """A detector that scores one task with a state it keeps (``task_state``: D²4FAD's encoded references, DCAM's
    trained student): what a registered task holds and every app calls. As a module it moves with ``.to(device)``
    and stays in eval mode; ``forward`` gives anomaly maps (for MONAI inferers), ``score`` scores and maps."""

    @property
    @abstractmethod
    def task_state(self) -> StateT:
        """The state this detector scores its one task against."""

    def train(self, mode: bool = True) -> TaskDetector:
        """A detector only scores: it stays in eval mode (MONAI's ``eval_mode`` restores ``train()`` after runs)."""
        return super().train(False)

    def forward(self, query: torch.Tensor) -> torch.Tensor:
        """Anomaly maps ``[B, 1, H, W]`` of queries ``[B, 3, H, W]``."""
        return self.detect_images(query, self.task_state).maps

    @torch.inference_mode()
    def score(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores ``[B]`` and anomaly maps ``[B, 1, H, W]`` of queries ``[B, 3, H, W]``."""
        detection = self.detect_images(query, self.task_state)
        return detection.scores, detection.maps


class FrozenTeacherDetector(Detector[EncodedT, StateT]):
    """A detector on a frozen ImageNet teacher's features, with no cross-task training (the baselines).

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
        self._device = torch.device(device)
        self.teacher_name = teacher
        self.teacher = build_teacher(teacher, teacher_weights, teacher_normalize).to(self._device)

    @property
    def device(self) -> torch.device:
        return self._device
