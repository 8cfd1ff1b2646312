"""Two heterogeneous students of one frozen teacher (Kim et al., "Generalist multi-class anomaly detection via
distillation to two heterogeneous student networks"): an encoder-decoder student that rebuilds the teacher's patch
features through a noisy bottleneck (after Dinomaly; local anomalies) and an encoder-encoder student trained from
scratch to reproduce the teacher's class tokens (semantic anomalies).

With a DINOv2 ViT teacher (``networks.vit``) this is the paper's design. With a CNN teacher (the offline Lite0) the
documented adaptation holds (docs/methods/TWO_STUDENTS.md): the stage maps at strides 4, 8 and 16 are the patch
features the decoder rebuilds from the stride-32 map, and each stage's global average is that layer's class token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from monai.utils import look_up_option
from torch import nn

from monai_d2fad.networks.decoder import decoder_for
from monai_d2fad.networks.teachers import TEACHERS, Teacher, TeacherAndStudents, build_teacher
from monai_d2fad.networks.vit import VIT_TEACHERS, Block, ViTTeacher, build_vit_teacher

__all__ = [
    "TWO_STUDENT_TEACHERS",
    "ConvDecoderStudent",
    "TokenDecoderStudent",
    "TwoStudents",
    "TwoStudentsOutput",
    "TwoStudentsPair",
]

TWO_STUDENT_TEACHERS = (*TEACHERS, *VIT_TEACHERS)


@dataclass
class TwoStudentsOutput:
    """``teacher_patches`` and ``decoder_patches``: the feature grids the decoder student rebuilds ``[B, C, h, w]``
    (per scale for a CNN, per group of middle blocks for a ViT); ``teacher_classes`` and ``student_classes``: the
    class tokens ``[B, C]`` of every layer, the last one being the final token."""

    teacher_patches: list[torch.Tensor]
    decoder_patches: list[torch.Tensor]
    teacher_classes: list[torch.Tensor]
    student_classes: list[torch.Tensor]


def _teacher_class(name: str) -> type[Teacher]:
    return ViTTeacher if name in VIT_TEACHERS else look_up_option(name, TEACHERS)


class ConvDecoderStudent(nn.Module):
    """CNN teachers: a noisy bottleneck (dropout, then a 1x1-convolution MLP) on the stride-32 map, then the reverse
    decoder that rebuilds the maps at strides 4, 8 and 16."""

    def __init__(self, teacher: str, channels: tuple[int, ...], dropout: float = 0.2):
        super().__init__()
        deep = channels[3]
        self.bottleneck = nn.Sequential(
            nn.Dropout(dropout), nn.Conv2d(deep, deep, 1), nn.GELU(), nn.Conv2d(deep, deep, 1)
        )
        self.decoder = decoder_for(teacher, channels)

    def forward(self, grids: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(targets, rebuilt): the teacher's first three maps and the decoder's."""
        return grids[:3], self.decoder(self.bottleneck(grids[3]))


class TokenDecoderStudent(nn.Module):
    """ViT teachers (Dinomaly): the mean of the middle blocks' patch tokens through a noisy bottleneck (dropout and
    an MLP), then as many transformer blocks as there are middle blocks; teacher and decoder blocks are averaged in
    ``groups`` consecutive groups, the grids compared (the loose, group-wise constraint)."""

    def __init__(self, dim: int, heads: int, depth: int, groups: int = 2, dropout: float = 0.2):
        super().__init__()
        self.skip = depth // 6  # DINOv2-B: blocks 2..9 of 12, as Dinomaly
        self.middle, self.groups = depth - 2 * self.skip, groups
        self.bottleneck = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout)
        )
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(self.middle))

    def _grouped(self, layers: list[torch.Tensor]) -> list[torch.Tensor]:
        size = len(layers) // self.groups
        return [torch.stack(layers[i * size : (i + 1) * size]).mean(0) for i in range(self.groups)]

    def forward(self, grids: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        middle = grids[self.skip : self.skip + self.middle]
        b, d, h, w = middle[0].shape
        tokens = self.bottleneck(torch.stack(middle).mean(0).flatten(2).transpose(1, 2))
        rebuilt = []
        for block in self.blocks:
            tokens = block(tokens)
            rebuilt.append(tokens.transpose(1, 2).reshape(b, d, h, w))
        return self._grouped(middle), self._grouped(rebuilt)


class TwoStudentsPair(nn.Module):
    """The trainable part: the decoder student and the encoder student (the teacher's architecture, random and
    unfrozen)."""

    def __init__(self, teacher: str, teacher_normalize: str | None = None, dropout: float = 0.2):
        super().__init__()
        self.encoder: Teacher = _teacher_class(teacher)(teacher, teacher_normalize)  # unfrozen: a student
        if isinstance(self.encoder, ViTTeacher):
            spec = self.encoder.spec
            self.decoder: nn.Module = TokenDecoderStudent(spec.dim, spec.heads, spec.depth, dropout=dropout)
        else:
            self.decoder = ConvDecoderStudent(teacher, self.encoder.channels, dropout)


class TwoStudents(TeacherAndStudents):
    """Frozen teacher and its two students (``TwoStudentsPair``).

    Args:
        teacher: a CNN of ``networks.TEACHERS`` (offline: ``efficientnet_lite0``) or a DINOv2 ViT of
            ``networks.vit.VIT_TEACHERS`` (the paper: ``dinov2_vitb14_reg4``).
        teacher_weights: ``"imagenet"`` (CNNs), a weights file (for a ViT: the official DINOv2 checkpoint), or None
            (random, tests).
        teacher_normalize: input normalisation (default: the one the teacher's weights expect).
        dropout: the noisy bottleneck's drop rate (paper: 0.2).
        teacher_module: an already built frozen teacher to share (a fresh pair per reference set).
    """

    def __init__(
        self,
        teacher: str = "efficientnet_lite0",
        teacher_weights: str | os.PathLike | None = "imagenet",
        teacher_normalize: str | None = None,
        dropout: float = 0.2,
        teacher_module: Teacher | None = None,
    ):
        super().__init__()
        look_up_option(teacher, TWO_STUDENT_TEACHERS)
        if teacher_module is not None:
            self.teacher = teacher_module
        elif teacher in VIT_TEACHERS:
            self.teacher = build_vit_teacher(teacher, teacher_weights, teacher_normalize)
        else:
            self.teacher = build_teacher(teacher, teacher_weights, teacher_normalize)
        self.student = TwoStudentsPair(teacher, teacher_normalize, dropout)
        self.config = self.make_config(teacher, teacher_weights, teacher_normalize, dropout=dropout)

    def forward(self, images: torch.Tensor) -> TwoStudentsOutput:
        """Teacher and student features of RGB ``images`` ``[B, 3, H, W]`` in [0, 1]."""
        grids, classes = self.teacher.token_layers(images)
        grids, classes = [g.detach() for g in grids], [c.detach() for c in classes]
        targets, rebuilt = self.student.decoder(grids)
        _, student_classes = self.student.encoder.token_layers(images)
        return TwoStudentsOutput(targets, rebuilt, classes, student_classes)
