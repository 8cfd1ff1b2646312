"""Reverse-distillation student: a decoder that mirrors the teacher and rebuilds its three shallower scales.

For ResNet teachers this is RD4AD's ``de_resnet`` (stage and block names kept: ``layer1.0.conv1`` ...), fed
directly with the teacher's deepest feature as in the official D²4FAD code (no OCBE bottleneck).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from monai.utils import look_up_option
from torch import nn

if TYPE_CHECKING:
    from monai_d2fad.networks.teachers import Teacher

__all__ = [
    "DISTILLED",
    "LEVELS",
    "STUDENT_OUTPUTS",
    "ReverseDecoder",
    "UpBasicBlock",
    "UpBottleneck",
    "decoder_for",
    "default_student_output",
    "split_levels",
]


def _deconv2x2(in_ch: int, out_ch: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(in_ch, out_ch, kernel_size=2, stride=2, bias=False)


def _conv3x3(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)


def _shortcut(in_ch: int, out_ch: int, up: bool) -> nn.Module | None:
    if not up and in_ch == out_ch:
        return None
    conv = _deconv2x2(in_ch, out_ch) if up else nn.Conv2d(in_ch, out_ch, 1, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out_ch))


class UpBasicBlock(nn.Module):
    """Two convolutions with a residual; the first is a stride-2 transposed convolution when ``up``.

    ``activate``: end with a ReLU (False: the linear residual sum, for the last block of a stage whose output
    must match a signed teacher feature).
    """

    def __init__(self, in_ch: int, out_ch: int, mid_ch: int | None = None, up: bool = False, activate: bool = True):
        super().__init__()
        self.activate = activate
        self.conv1 = _deconv2x2(in_ch, out_ch) if up else _conv3x3(in_ch, out_ch)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(out_ch, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.upsample = _shortcut(in_ch, out_ch, up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.upsample is None else self.upsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out)) + identity
        return self.relu(out) if self.activate else out


class UpBottleneck(nn.Module):
    """1x1 - (3x3 or stride-2 2x2 transposed) - 1x1 bottleneck with a residual; ``activate`` as ``UpBasicBlock``."""

    def __init__(self, in_ch: int, out_ch: int, mid_ch: int | None = None, up: bool = False, activate: bool = True):
        super().__init__()
        self.activate = activate
        mid_ch = mid_ch or out_ch // 4
        self.conv1 = nn.Conv2d(in_ch, mid_ch, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_ch)
        self.conv2 = _deconv2x2(mid_ch, mid_ch) if up else _conv3x3(mid_ch, mid_ch)
        self.bn2 = nn.BatchNorm2d(mid_ch)
        self.conv3 = nn.Conv2d(mid_ch, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.upsample = _shortcut(in_ch, out_ch, up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.upsample is None else self.upsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out)) + identity
        return self.relu(out) if self.activate else out


BLOCKS: dict[str, type[nn.Module]] = {"basic": UpBasicBlock, "bottleneck": UpBottleneck}


class ReverseDecoder(nn.Module):
    """Upsample the deepest teacher feature stage by stage, producing one feature map per distilled scale.

    Args:
        in_channels: channels of the teacher's deepest feature (stride 32, or a head at stride 32).
        out_channels: channels of the teacher's scales, shallow first (strides 4, 8, 16; or 8, 16, 32).
        blocks: blocks per decoder stage, deepest stage first.
        block: ``"basic"`` or ``"bottleneck"``.
        mid_channels: bottleneck widths per stage, deepest first (default ``out // 4``).
        output_activation: end each stage with a ReLU (``True``, RD4AD: ResNet features are non-negative) or with
            the linear residual sum (``False``, for teachers whose features are signed, like EfficientNet-Lite's
            linear bottlenecks, which a ReLU output could not reproduce).
        upsample_first: whether the first stage doubles the resolution (``False`` when the input is at the stride of
            the deepest distilled scale, as a head is).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: Sequence[int],
        blocks: Sequence[int] = (2, 2, 2),
        block: str = "basic",
        mid_channels: Sequence[int | None] | None = None,
        output_activation: bool = True,
        upsample_first: bool = True,
    ):
        super().__init__()
        block_cls = BLOCKS[block]
        outs = list(out_channels)[::-1]
        mids = list(mid_channels) if mid_channels is not None else [None] * len(outs)
        ch = in_channels
        for i, (out_ch, mid, n) in enumerate(zip(outs, mids, blocks)):
            stage = [
                block_cls(
                    out_ch if j else ch,
                    out_ch,
                    mid,
                    up=j == 0 and (i > 0 or upsample_first),
                    activate=j < n - 1 or output_activation,
                )
                for j in range(n)
            ]
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
            ch = out_ch
        self.num_stages = len(outs)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features shallow first, matching the order of the teacher's scales."""
        feats = []
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
            feats.append(x)
        return feats[::-1]


STUDENT_OUTPUTS = ("relu", "linear")
# which of the teacher's four features (strides 4-32) the student rebuilds, and from what: "shallow" = strides 4, 8,
# 16 from the stride-32 stage (the paper's WRN50-2 layer1-3 from layer4; the default for every teacher: with Lite0
# it scored higher than "deep" on the held-out tasks' val splits, docs/RESULTS.md); "deep" = strides 8, 16, 32 from
# the teacher's head at stride 32 (EfficientNet-Lite)
DISTILLED = {"shallow": slice(0, 3), "deep": slice(1, 4)}
LEVELS = tuple(DISTILLED)


def split_levels(
    teacher: Teacher, feats: Sequence[torch.Tensor], levels: str
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The distilled scales and the student's input from ``teacher``'s four features (strides 4-32), of images
    ``[N, C, h, w]`` or of their references ``[B, K, C, h, w]``."""
    distilled = list(feats[DISTILLED[look_up_option(levels, LEVELS)]])
    deepest = feats[3]
    if levels == "shallow":
        return distilled, deepest
    return distilled, teacher.head(deepest.flatten(0, -4)).unflatten(0, deepest.shape[:-3])


def default_student_output(teacher: str) -> str:
    """``relu`` where the teacher's features are non-negative (ResNets: post-ReLU stages, the paper's setting),
    ``linear`` where they are signed (EfficientNet-Lite: linear bottlenecks, about half of the values negative)."""
    from monai_d2fad.networks.resnet import RESNET_SPECS

    return "relu" if teacher in RESNET_SPECS else "linear"


def decoder_for(
    teacher: str,
    channels: Sequence[int],
    output: str | None = None,
    levels: str = "shallow",
    head_channels: int = 0,
) -> ReverseDecoder:
    """The student that mirrors ``teacher`` whose features have ``channels`` (strides 4, 8, 16, 32).

    ``output``: ``relu`` or ``linear`` end of each stage (see ``ReverseDecoder``); default per teacher.
    ``levels``: ``shallow`` (strides 4-16 from stride 32) or ``deep`` (strides 8-32 from the teacher's head of
    ``head_channels``; EfficientNet-Lite teachers), see ``LEVELS``.
    """
    from monai_d2fad.networks.resnet import RESNET_SPECS, Bottleneck

    relu = look_up_option(output or default_student_output(teacher), STUDENT_OUTPUTS) == "relu"
    if look_up_option(levels, LEVELS) == "deep":
        if not head_channels:
            raise ValueError(f"levels='deep' needs a teacher with a head after its stride-32 stage; {teacher} has none")
        outs = list(channels[DISTILLED["deep"]])
        return ReverseDecoder(head_channels, outs, (2, 2, 2), "basic", None, relu, upsample_first=False)
    outs = list(channels[DISTILLED["shallow"]])
    if teacher in RESNET_SPECS:
        block, layers, width = RESNET_SPECS[teacher]
        if block is Bottleneck:
            mids = [int(c // 4 * width / 64) for c in outs[::-1]]
            return ReverseDecoder(channels[3], outs, layers[:3], "bottleneck", mids, relu)
        return ReverseDecoder(channels[3], outs, layers[:3], "basic", output_activation=relu)
    return ReverseDecoder(channels[3], outs, (2, 2, 2), "basic", output_activation=relu)
