"""D²4FAD: frozen teacher, reverse-distillation student and learn-to-weight (paper Fig. 1)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from monai.utils import look_up_option
from torch import nn

from monai_d2fad.networks.decoder import DISTILLED, decoder_for, default_student_output, split_levels
from monai_d2fad.networks.learn_to_weight import build_l2w
from monai_d2fad.networks.teachers import STRIDES, build_teacher
from monai_d2fad.scoring import IMAGE_SCORES, MAP_COMBINE, anomaly_map, image_score, support_distance

__all__ = ["D2FAD", "D2FADOutput"]


@dataclass
class D2FADOutput:
    """What the losses need, per distilled scale (strides 4, 8, 16; or 8, 16, 32 with ``levels="deep"``).

    Attributes:
        teacher_query: teacher features of the queries, ``[B, C, H, W]``.
        student_query: student features of the queries, ``[B, C, H, W]``.
        student_support: student features of the supports, ``[B, K, C, H, W]``.
        weights: learn-to-weight weights ``[B, K]``.
        aggregate: how ``weights`` combine the supports (see ``scoring.support_distance``).
    """

    teacher_query: list[torch.Tensor]
    student_query: list[torch.Tensor]
    student_support: list[torch.Tensor]
    weights: list[torch.Tensor]
    aggregate: str


class D2FAD(nn.Module):
    """Dual-distillation few-shot anomaly detector.

    Args:
        teacher: ``wide_resnet50_2`` (paper), ``resnet18``, ``resnet34``, ``resnet50`` or ``efficientnet_lite0``.
        teacher_weights: ``"imagenet"``, a state-dict file, or None (random teacher, for tests).
        l2w: learn-to-weight variant: ``dot`` (Eq. 4), ``gaussian``, ``embedded_gaussian``, ``concat`` or ``none``.
        teacher_normalize: input normalisation of the teacher (default: the one its weights expect);
            ``"none"`` feeds [0, 1] inputs unchanged as the official code does.
        map_combine: ``sum`` (default) or ``product`` of the per-scale maps.
        sigma: Gaussian blur of the anomaly map, in pixels (0 disables).
        image_score: ``mean`` of the map (paper) or ``max`` (official code).
        student_output: how the student's stages end: ``relu`` (RD4AD, for the non-negative ResNet features) or
            ``linear`` (for signed features such as EfficientNet-Lite's); default per teacher.
        l2w_similarity: ``cosine`` with a learned temperature (default) or ``dot`` (Eq. 4); see ``learn_to_weight``.
        levels: which teacher features the student rebuilds: ``shallow`` (default; strides 4, 8, 16 from the
            stride-32 stage: the paper's WRN50-2 layer1-3 from layer4) or ``deep`` (strides 8, 16, 32 from the
            teacher's head: EfficientNet-Lite's 1x1 head); see ``decoder.DISTILLED``.
        global_weight: this project's extension, not the paper's method (0, the default, is D²4FAD): the weight of
            the image-level discrepancy of the teacher's features to the nearest reference
            (``scoring.global_discrepancy``), added to every location of the anomaly map, so that the image score
            rises by ``global_weight`` times it. Chosen on the training tasks' ``val`` splits
            (``monai-d2fad global-weight``); the checkpoint keeps it, so every app scores with it.
    """

    def __init__(
        self,
        teacher: str = "wide_resnet50_2",
        teacher_weights: str | os.PathLike | None = "imagenet",
        l2w: str = "dot",
        teacher_normalize: str | None = None,
        map_combine: str = "sum",
        sigma: float = 4.0,
        image_score: str = "mean",
        student_output: str | None = None,
        l2w_similarity: str = "cosine",
        levels: str = "shallow",
        global_weight: float = 0.0,
    ):
        super().__init__()
        if not math.isfinite(global_weight) or global_weight < 0:
            raise ValueError(f"global_weight must be a finite number >= 0, got {global_weight}")
        look_up_option(map_combine, MAP_COMBINE)
        look_up_option(image_score, IMAGE_SCORES)
        student_output = student_output or default_student_output(teacher)
        self.teacher = build_teacher(teacher, teacher_weights, teacher_normalize)
        channels, head = self.teacher.channels, self.teacher.head_channels
        self.student = decoder_for(teacher, channels, student_output, levels, head)
        self.l2w = build_l2w(l2w, channels[DISTILLED[levels]], l2w_similarity)
        self.config = {
            "teacher": teacher,
            "teacher_weights": None if teacher_weights is None else str(teacher_weights),
            "l2w": l2w,
            "teacher_normalize": teacher_normalize,
            "map_combine": map_combine,
            "sigma": float(sigma),
            "image_score": image_score,
            "student_output": student_output,
            "l2w_similarity": l2w_similarity,
            "levels": levels,
            "global_weight": float(global_weight),
        }

    @property
    def strides(self) -> tuple[int, ...]:
        """The strides of the distilled scales."""
        return STRIDES[DISTILLED[self.config["levels"]]]

    def split_levels(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The distilled scales and the student's input (``decoder.split_levels``) from the teacher's four features."""
        return split_levels(self.teacher, feats, self.config["levels"])

    def encode(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Teacher features (the distilled scales) and student features of ``images [N, 3, H, W]`` in [0, 1]."""
        _check_images(images, "images")
        teacher, deepest = self.split_levels(self.teacher(images))
        return teacher, self.student(deepest)

    def forward(
        self, query: torch.Tensor | Sequence[torch.Tensor], support: torch.Tensor | Sequence[torch.Tensor]
    ) -> D2FADOutput:
        """Training path: queries and their supports, the teacher run on all of them in one batch.

        ``query`` ``[B, 3, H, W]`` and ``support`` ``[B, K, 3, H, W]`` are images; or both are the teacher's features
        of them (four tensors per scale, strides 4-32: ``[B, C, h, w]`` and ``[B, K, C, h, w]``), as
        ``data.EpisodeDataset`` gives them with a ``TeacherFeatureCache``: then only the student runs.
        """
        if isinstance(query, torch.Tensor):
            _check_images(query, "query")
            if support.dim() != 5 or support.shape[0] != query.shape[0] or support.shape[2:] != query.shape[1:]:
                raise ValueError(
                    f"support must be [B, K, 3, H, W] matching query {tuple(query.shape)}, got {tuple(support.shape)}"
                )
            b, k = support.shape[:2]
            teacher, student = self.encode(torch.cat([query, support.flatten(0, 1)]))
            teacher_query = [f[:b] for f in teacher]
        else:
            b, k = support[-1].shape[:2]
            teacher_query, query_deepest = self.split_levels(query)
            support_deepest = self.split_levels(support)[1]
            student = self.student(torch.cat([query_deepest, support_deepest.flatten(0, 1)]))
        student_support = [f[b:].unflatten(0, (b, k)) for f in student]
        student_query = [f[:b] for f in student]
        return D2FADOutput(
            teacher_query=teacher_query,
            student_query=student_query,
            student_support=student_support,
            weights=self.l2w(student_query, student_support),
            aggregate=self.l2w.aggregate,
        )

    def anomaly_map(
        self,
        student_query: list[torch.Tensor],
        student_support: list[torch.Tensor],
        weights: list[torch.Tensor],
        size: tuple[int, int],
    ) -> torch.Tensor:
        """Anomaly maps ``[B, 1, H, W]`` from student features of queries and supports and their weights."""
        distances = [
            support_distance(q, s, w, self.l2w.aggregate) for q, s, w in zip(student_query, student_support, weights)
        ]
        return anomaly_map(distances, size, self.config["map_combine"], self.config["sigma"])

    def score_output(self, output: D2FADOutput, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores ``[B]`` and maps ``[B, 1, H, W]`` from a training-path output (supports re-encoded per query)."""
        maps = self.anomaly_map(output.student_query, output.student_support, output.weights, size)
        return image_score(maps, self.config["image_score"]), maps


def _check_images(x: torch.Tensor, name: str) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must be RGB images [N, 3, H, W], got shape {tuple(x.shape)}")
    if x.shape[-1] % 32 or x.shape[-2] % 32:
        raise ValueError(
            f"{name} height and width must be multiples of 32 (the student rebuilds the teacher's stride-32 feature), "
            f"got {tuple(x.shape[-2:])}"
        )
