"""D²4FAD: frozen teacher, reverse-distillation student and learn-to-weight (paper Fig. 1)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from monai_d2fad.networks.decoder import decoder_for
from monai_d2fad.networks.learn_to_weight import build_l2w
from monai_d2fad.networks.teachers import build_teacher
from monai_d2fad.scoring import IMAGE_SCORES, MAP_COMBINE, anomaly_map, image_score, support_distance

__all__ = ["D2FAD", "D2FADOutput"]


@dataclass
class D2FADOutput:
    """What the losses need, per scale (strides 4, 8, 16).

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
    ):
        super().__init__()
        if map_combine not in MAP_COMBINE:
            raise ValueError(f"unknown map_combine {map_combine!r}; choose one of {MAP_COMBINE}")
        if image_score not in IMAGE_SCORES:
            raise ValueError(f"unknown image_score {image_score!r}; choose one of {IMAGE_SCORES}")
        self.teacher = build_teacher(teacher, teacher_weights, teacher_normalize)
        self.student = decoder_for(teacher, self.teacher.channels)
        self.l2w = build_l2w(l2w, self.teacher.channels[:3])
        self.config = {
            "teacher": teacher,
            "teacher_weights": None if teacher_weights is None else str(teacher_weights),
            "l2w": l2w,
            "teacher_normalize": teacher_normalize,
            "map_combine": map_combine,
            "sigma": float(sigma),
            "image_score": image_score,
        }

    def encode(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Teacher features (strides 4, 8, 16) and student features of ``images [N, 3, H, W]`` in [0, 1]."""
        _check_images(images, "images")
        feats = self.teacher(images)
        return feats[:3], self.student(feats[-1])

    def forward(self, query: torch.Tensor, support: torch.Tensor) -> D2FADOutput:
        """Training path: queries ``[B, 3, H, W]`` and their supports ``[B, K, 3, H, W]``, teacher in one batch."""
        _check_images(query, "query")
        if support.dim() != 5 or support.shape[0] != query.shape[0] or support.shape[2:] != query.shape[1:]:
            raise ValueError(
                f"support must be [B, K, 3, H, W] matching query {tuple(query.shape)}, got {tuple(support.shape)}"
            )
        b, k = support.shape[:2]
        teacher, student = self.encode(torch.cat([query, support.flatten(0, 1)]))
        student_support = [f[b:].unflatten(0, (b, k)) for f in student]
        student_query = [f[:b] for f in student]
        return D2FADOutput(
            teacher_query=[f[:b] for f in teacher],
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
