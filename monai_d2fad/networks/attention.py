"""Convolutional attention blocks (CBAM: Woo et al., 2018), the blocks DCAM distributes over a student's features.

MONAI has squeeze-excitation (``ChannelSELayer``, average pooling only) but not CBAM's channel attention (average
and max pooling through one MLP) nor its spatial attention (a convolution over the channel mean and max).
"""

from __future__ import annotations

import torch
from monai.utils import look_up_option
from torch import nn

__all__ = ["ATTENTION_MODES", "ChannelAttention", "ConvAttention", "SpatialAttention"]

ATTENTION_MODES = ("none", "channel", "spatial", "both")


class ChannelAttention(nn.Module):
    """``x * sigmoid(mlp(avgpool(x)) + mlp(maxpool(x)))``: one weight per channel and image."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.mlp(x.mean((-2, -1), keepdim=True)) + self.mlp(x.amax((-2, -1), keepdim=True))
        return x * torch.sigmoid(pooled)


class SpatialAttention(nn.Module):
    """``x * sigmoid(conv([mean_c(x), max_c(x)]))``: one weight per location and image."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class ConvAttention(nn.Sequential):
    """A CBAM block of ``mode``: ``"channel"``, ``"spatial"``, ``"both"`` (channel then spatial, as CBAM) or
    ``"none"`` (identity, so that DCAM without attention is STFPM)."""

    def __init__(self, channels: int, mode: str = "channel", reduction: int = 8, kernel_size: int = 7):
        mode = look_up_option(mode, ATTENTION_MODES)
        blocks = []
        if mode in ("channel", "both"):
            blocks.append(ChannelAttention(channels, reduction))
        if mode in ("spatial", "both"):
            blocks.append(SpatialAttention(kernel_size))
        super().__init__(*blocks)
        self.mode = mode
