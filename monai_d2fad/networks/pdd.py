"""PDD (Lu et al., "Manifold-prior diverse distillation for medical anomaly detection", CVPR 2026): two frozen
teachers, a global-context one and a local-structure one, unified into one manifold (MMU) that two students learn:
a reverse student that rebuilds it level by level from the teachers' deepest maps through inter-level adaption
(InA), and a forward student that reads the image and skip-projects its levels into the manifold through a manifold
prior affine (MPA).

The authors' code is not public: every module is this project's reading of the abstract, written down with the
alternatives in docs/methods/PDD.md. The paper's teachers are VMamba-Tiny (global; a user-supplied module here, see
``networks.external_teacher``) and WideResNet-50-2 (local); offline, EfficientNet-Lite2 and -Lite0.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.utils import look_up_option
from torch import nn

from monai_d2fad.networks.decoder import ReverseDecoder
from monai_d2fad.networks.external_teacher import build_external_teacher, is_import_path
from monai_d2fad.networks.teachers import TEACHERS, Teacher, TeacherAndStudents, build_teacher

__all__ = [
    "PDD",
    "InterLevelAdaption",
    "LayerwiseStudent",
    "ManifoldPriorAffine",
    "ManifoldUnification",
    "PDDOutput",
    "PDDStudents",
    "SkipProjectedStudent",
    "TeacherPair",
]


@dataclass
class PDDOutput:
    """Per level (strides 4, 8, 16): ``teachers[t]`` each teacher's maps (unit length per location), ``matched[t]``
    their MMU projections, ``rebuilt[t]`` their reconstructions from the manifold, ``unified`` the manifold (the
    students' target, detached) and ``student1``, ``student2`` the students' maps."""

    teachers: list[list[torch.Tensor]]
    matched: list[list[torch.Tensor]]
    rebuilt: list[list[torch.Tensor]]
    unified: list[torch.Tensor]
    student1: list[torch.Tensor]
    student2: list[torch.Tensor]


def _resized(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``x`` at ``like``'s spatial size (bilinear; unchanged when it already is)."""
    if x.shape[-2:] == like.shape[-2:]:
        return x
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def _conv1x1(in_ch: int, out_ch: int, zero: bool = False) -> nn.Conv2d:
    conv = nn.Conv2d(in_ch, out_ch, 1)
    if zero:  # a residual branch that starts as the identity
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    return conv


class TeacherPair(nn.Module):
    """The frozen teachers: ``teachers[0]`` the local-structure one, ``teachers[1]`` (if any) the global-context one.
    ``forward`` gives each teacher's four maps (strides 4-32)."""

    def __init__(self, local: Teacher, global_: Teacher | None = None):
        super().__init__()
        self.teachers = nn.ModuleList([local] if global_ is None else [local, global_])

    def forward(self, images: torch.Tensor) -> list[list[torch.Tensor]]:
        return [teacher(images) for teacher in self.teachers]

    def fingerprint(self) -> str:
        """Both teachers' weights, hashed (see ``Teacher.fingerprint``)."""
        joined = "".join(teacher.fingerprint() for teacher in self.teachers)
        return hashlib.sha256(joined.encode()).hexdigest()[:16]


class ManifoldUnification(nn.Module):
    """MMU: each teacher's level map (unit length per location) through its own MLP into a ``dim``-channel space;
    the manifold is the mean of the teachers' projections. A linear head per teacher rebuilds its map from the
    manifold, so that it keeps what each teacher knows, while the matching term (``losses.PDDLoss``) pulls the two
    projections together: the shared structure."""

    def __init__(self, channels: Sequence[Sequence[int]], dims: Sequence[int]):
        super().__init__()
        self.project = nn.ModuleList(
            nn.ModuleList(nn.Sequential(_conv1x1(c, d), nn.GELU(), _conv1x1(d, d)) for c, d in zip(ch, dims))
            for ch in channels
        )
        self.rebuild = nn.ModuleList(nn.ModuleList(_conv1x1(d, c) for c, d in zip(ch, dims)) for ch in channels)

    def forward(self, levels: list[list[torch.Tensor]]) -> tuple[list[list[torch.Tensor]], ...]:
        """(matched, unified, rebuilt) from each teacher's unit-length maps of the three levels."""
        first = levels[0]
        matched = [
            [proj(_resized(f, ref)) for proj, f, ref in zip(projects, maps, first)]
            for projects, maps in zip(self.project, levels)
        ]
        unified = [torch.stack(per_level).mean(0) for per_level in zip(*matched)]
        rebuilt = [[head(u) for head, u in zip(heads, unified)] for heads in self.rebuild]
        return matched, unified, rebuilt


class InterLevelAdaption(nn.Module):
    """InA: each level receives every other level, resized to it through a 1x1 convolution, as a residual (zero at
    initialisation): the intermediate levels see their neighbours' context."""

    def __init__(self, dims: Sequence[int]):
        super().__init__()
        n = len(dims)
        self.adapt = nn.ModuleList(
            nn.ModuleList(_conv1x1(dims[m], dims[level], zero=True) for m in range(n) if m != level)
            for level in range(n)
        )

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for level, (f, adapters) in enumerate(zip(feats, self.adapt)):
            others = [m for i, m in enumerate(feats) if i != level]
            out.append(f + sum(_resized(adapt(m), f) for adapt, m in zip(adapters, others)))  # 1x1 conv first: cheaper
        return out


class ManifoldPriorAffine(nn.Module):
    """MPA: a cross-layer prior sets a scale and a shift per channel and location of a level's map,
    ``h (1 + gamma) + beta`` (zero at initialisation)."""

    def __init__(self, prior_channels: int, channels: int):
        super().__init__()
        self.affine = _conv1x1(prior_channels, 2 * channels, zero=True)

    def forward(self, h: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        gamma, beta = _resized(self.affine(prior), h).chunk(2, dim=1)
        return h * (1 + gamma) + beta


class LayerwiseStudent(nn.Module):
    """Student 1: the teachers' stride-32 maps through a noisy bottleneck, a reverse decoder to the three levels and
    InA; distilled level by level (local consistency)."""

    def __init__(self, deep_channels: int, dims: Sequence[int], dropout: float = 0.2):
        super().__init__()
        self.bottleneck = nn.Sequential(
            nn.Dropout(dropout), _conv1x1(deep_channels, dims[-1]), nn.BatchNorm2d(dims[-1]), nn.ReLU(inplace=True)
        )
        self.decoder = ReverseDecoder(dims[-1], dims, (1, 1, 1), "bottleneck", output_activation=False)
        self.ina = InterLevelAdaption(dims)

    def forward(self, deep: torch.Tensor) -> list[torch.Tensor]:
        return self.ina(self.decoder(self.bottleneck(deep)))


class SkipProjectedStudent(nn.Module):
    """Student 2: an encoder of the image (the local teacher's architecture, random and trainable) whose maps at
    strides 4, 8 and 16 are skip-projected into the manifold (1x1 convolutions), each modulated through MPA by the
    cross-layer prior, its own stride-32 map (cross-layer dependencies). It reads the image, not the teachers'
    features: a forward student beside student 1's reverse one, so the two err differently."""

    def __init__(self, encoder: Teacher, dims: Sequence[int]):
        super().__init__()
        self.encoder = encoder
        channels = encoder.channels
        self.skips = nn.ModuleList(_conv1x1(c, d) for c, d in zip(channels[:3], dims))
        self.mpa = nn.ModuleList(ManifoldPriorAffine(channels[3], d) for d in dims)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        feats = self.encoder(images)
        return [mpa(skip(f), feats[3]) for skip, mpa, f in zip(self.skips, self.mpa, feats[:3])]


class PDDStudents(nn.Module):
    """The trainable part: the MMU and the two students. ``forward`` takes each teacher's four maps and the images
    (student 2 reads them); ``encoder`` is student 2's encoder."""

    def __init__(self, channels: Sequence[Sequence[int]], dims: Sequence[int], encoder: Teacher, dropout: float = 0.2):
        super().__init__()
        self.mmu = ManifoldUnification([ch[:3] for ch in channels], dims)
        self.student1 = LayerwiseStudent(sum(ch[3] for ch in channels), dims, dropout)
        self.student2 = SkipProjectedStudent(encoder, dims)

    def forward(self, features: list[list[torch.Tensor]], images: torch.Tensor) -> PDDOutput:
        unit = [[F.normalize(f.float(), dim=1) for f in maps] for maps in features]
        teachers = [maps[:3] for maps in unit]
        matched, unified, rebuilt = self.mmu(teachers)
        target = [u.detach() for u in unified]  # the students do not move their target
        deep = torch.cat([_resized(maps[3], unit[0][3]) for maps in unit], dim=1)
        return PDDOutput(teachers, matched, rebuilt, target, self.student1(deep), self.student2(images))


def _build(name: str, weights: str | os.PathLike | None, normalize: str | None) -> Teacher:
    if is_import_path(name):
        return build_external_teacher(name, weights, normalize)
    return build_teacher(name, weights, normalize)


class PDD(TeacherAndStudents):
    """Two frozen teachers and PDD's trainable part (``PDDStudents``).

    Args:
        teacher: the local-structure teacher, a name of ``networks.TEACHERS`` (paper: ``wide_resnet50_2``; offline:
            ``efficientnet_lite0``).
        teacher_weights: ``"imagenet"``, a weights file, or None (random, tests).
        teacher_normalize: its input normalisation (default: what its weights expect).
        global_teacher: the global-context teacher: a name of ``networks.TEACHERS`` (offline:
            ``efficientnet_lite2``), a ``"package.module:factory"`` import path of the user's encoder (the paper's
            VMamba-Tiny; ``networks.external_teacher``), or None (one teacher: the ablation).
        global_teacher_weights, global_teacher_normalize: the same for the global teacher (for an import path: the
            checkpoint file of the user's encoder, or None when the factory loads its own weights).
        dims: channels of the unified manifold at strides 4, 8 and 16.
        dropout: the students' noisy bottlenecks.
        teacher_module: already built frozen teachers to share (a ``TeacherPair``; fresh students per reference set).
        global_teacher_module: an already built global teacher (any encoder wrapped in an ``ExternalTeacher``) in place
            of ``global_teacher``'s; its name is still recorded in checkpoints.
    """

    def __init__(
        self,
        teacher: str = "efficientnet_lite0",
        teacher_weights: str | os.PathLike | None = "imagenet",
        teacher_normalize: str | None = None,
        global_teacher: str | None = "efficientnet_lite2",
        global_teacher_weights: str | os.PathLike | None = "imagenet",
        global_teacher_normalize: str | None = None,
        dims: Sequence[int] = (64, 128, 256),
        dropout: float = 0.2,
        teacher_module: TeacherPair | None = None,
        global_teacher_module: Teacher | None = None,
    ):
        super().__init__()
        if global_teacher is None and global_teacher_module is not None:
            raise ValueError("name the global_teacher_module in global_teacher (its checkpoints record that name)")
        if global_teacher is not None and not is_import_path(global_teacher):
            look_up_option(global_teacher, TEACHERS)
        if teacher_module is None:
            local = build_teacher(teacher, teacher_weights, teacher_normalize)
            other = global_teacher_module
            if other is None and global_teacher is not None:
                other = _build(global_teacher, global_teacher_weights, global_teacher_normalize)
            teacher_module = TeacherPair(local, other)
        self.teacher = teacher_module
        encoder = look_up_option(teacher, TEACHERS)(teacher, teacher_normalize)  # unfrozen: student 2's encoder
        self.student = PDDStudents([t.channels for t in self.teacher.teachers], dims, encoder, dropout)
        weights = None if global_teacher_weights is None else str(global_teacher_weights)
        self.config = self.make_config(
            teacher, teacher_weights, teacher_normalize, global_teacher=global_teacher,
            global_teacher_weights=weights, global_teacher_normalize=global_teacher_normalize, dims=list(dims),
            dropout=dropout,
        )  # fmt: skip

    def forward(self, images: torch.Tensor) -> PDDOutput:
        """Teachers, manifold and students of RGB ``images`` ``[B, 3, H, W]`` in [0, 1]."""
        return self.student(self.teacher(images), images)
