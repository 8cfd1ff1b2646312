"""Heatmap overlays and episode strips for TensorBoard and reports."""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

__all__ = ["episode_strip", "jet", "overlay", "overlay_output", "save_png", "threshold_overlay"]


def jet(values: torch.Tensor) -> torch.Tensor:
    """The jet colormap of ``values [B, 1, H, W]`` in [0, 1]: ``[B, 3, H, W]`` (blue low, red high)."""
    v = values.clamp(0, 1)
    channels = [1.5 - (4 * v - c).abs() for c in (3.0, 2.0, 1.0)]  # red, green, blue ramps
    return torch.cat(channels, dim=1).clamp(0, 1)


def overlay(
    images: torch.Tensor, maps: torch.Tensor, vmin: float | None = None, vmax: float | None = None, alpha: float = 0.45
) -> torch.Tensor:
    """Blend anomaly maps onto RGB images.

    Maps are scaled with one range for all images (``vmin``/``vmax``, default: this batch's range): per-image
    normalisation would make every normal image look anomalous.
    """
    lo = float(maps.min()) if vmin is None else vmin
    hi = float(maps.max()) if vmax is None else vmax
    scaled = (maps - lo) / max(hi - lo, 1e-12)
    return ((1 - alpha) * images.clamp(0, 1) + alpha * jet(scaled)).clamp(0, 1)


def threshold_overlay(images: torch.Tensor, maps: torch.Tensor, threshold: float) -> torch.Tensor:
    """Overlays on one fixed scale per task, 0 to twice the decision threshold: the threshold is mid-scale (green)
    and every image of the task is coloured alike."""
    return overlay(images, maps, vmin=0.0, vmax=2 * threshold)


def save_png(image: torch.Tensor, path: str) -> str:
    """Write an RGB image ``[3, H, W]`` in [0, 1] as an 8-bit PNG."""
    pixels = (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def episode_strip(batch: dict) -> tuple[torch.Tensor, list[None]]:
    """Query and its K supports side by side, ``[B, 3, S, (K + 1) S]``, for ``TensorBoardImageHandler``.

    With cached teacher features the episode's images are under ``query_image`` and ``support_image``.
    """
    query, support = batch.get("query_image", batch["query"]), batch.get("support_image", batch["support"])
    images = torch.cat([query.unsqueeze(1), support], dim=1)  # [B, K+1, 3, S, S]
    return torch.cat(images.unbind(1), dim=-1), [None]


def overlay_output(output: dict) -> torch.Tensor:
    """Anomaly-map overlays of an evaluator output with ``image`` and ``map``."""
    return overlay(output["image"], output["map"])
