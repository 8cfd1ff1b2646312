"""DCAM (Jena et al., "Attend, Distill, Detect"): a student of the teacher's own architecture, trained from scratch to
match the frozen teacher's feature pyramid, with convolutional attention on its features during training only.

Interpretation (docs/methods/DCAM.md): the attention blocks refine the student's three feature maps before the
losses compare them with the teacher's (``DCAMOutput.attended``); in eval mode they are skipped, so inference runs
the plain student, at STFPM's cost, and the anomaly map compares the plain student with the teacher.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from monai.utils import look_up_option
from torch import nn

from monai_d2fad.networks.attention import ConvAttention
from monai_d2fad.networks.teachers import TEACHERS, Teacher, TeacherAndStudents, build_teacher

__all__ = ["DCAM", "DCAMOutput", "DCAMStudent"]

SCALES = 3  # strides 4, 8, 16: STFPM's pyramid


@dataclass
class DCAMOutput:
    """Per scale (strides 4, 8, 16): ``teacher`` and plain ``student`` features ``[B, C, H, W]``, and the student's
    features after its attention blocks (``attended``; the plain features in eval mode)."""

    teacher: list[torch.Tensor]
    student: list[torch.Tensor]
    attended: list[torch.Tensor]


class DCAMStudent(nn.Module):
    """The trainable part: a randomly initialised copy of the teacher's architecture and one attention block per
    scale (``attention``: ``none``, ``channel``, ``spatial`` or ``both``)."""

    def __init__(self, teacher: str, teacher_normalize: str | None = None, attention: str = "channel"):
        super().__init__()
        self.encoder: Teacher = look_up_option(teacher, TEACHERS)(teacher, teacher_normalize)  # unfrozen: a student
        self.attention = nn.ModuleList(ConvAttention(c, attention) for c in self.encoder.channels[:SCALES])

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Plain features and, in training mode, attended features (else the plain ones again)."""
        features = self.encoder(images)[:SCALES]
        if not self.training:
            return features, features
        return features, [block(f) for block, f in zip(self.attention, features)]


class DCAM(TeacherAndStudents):
    """Frozen teacher and its mirrored student (``DCAMStudent``).

    Args:
        teacher: a teacher of ``networks.TEACHERS`` (STFPM: ``resnet18``; offline: ``efficientnet_lite0``).
        teacher_weights: ``"imagenet"``, a state-dict file, or None (random teacher, for tests).
        teacher_normalize: input normalisation (default: the one the teacher's weights expect).
        attention: where DCAM's blocks act: ``channel`` (the paper's best), ``spatial``, ``both`` or ``none``
            (STFPM).
        teacher_module: an already built frozen teacher to share (a fresh student per reference set, without
            loading the teacher's weights again); it must be the one ``teacher`` and ``teacher_weights`` name.
    """

    def __init__(
        self,
        teacher: str = "efficientnet_lite0",
        teacher_weights: str | os.PathLike | None = "imagenet",
        teacher_normalize: str | None = None,
        attention: str = "channel",
        teacher_module: Teacher | None = None,
    ):
        super().__init__()
        self.teacher = teacher_module or build_teacher(teacher, teacher_weights, teacher_normalize)
        self.student = DCAMStudent(teacher, teacher_normalize, attention)
        self.config = self.make_config(teacher, teacher_weights, teacher_normalize, attention=attention)

    def forward(self, images: torch.Tensor) -> DCAMOutput:
        """Teacher and student features of RGB ``images`` ``[B, 3, H, W]`` in [0, 1]."""
        teacher = [f.detach() for f in self.teacher(images)[:SCALES]]
        student, attended = self.student(images)
        return DCAMOutput(teacher, student, attended)
