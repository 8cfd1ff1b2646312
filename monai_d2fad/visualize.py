"""Heatmap overlays and episode strips for TensorBoard and reports."""

from __future__ import annotations

import os
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

__all__ = [
    "THRESHOLD_SCALE",
    "THRESHOLD_TICKS",
    "draw_threshold_colorbar",
    "episode_strip",
    "heatmap_figure",
    "heatmap_name",
    "jet",
    "jet_colormap",
    "overlay",
    "pyplot",
    "save_png",
    "threshold_overlay",
    "threshold_scale",
]

# colour-bar ticks of the threshold scale, in multiples of the threshold
THRESHOLD_TICKS = (0.0, 0.5, 1.0, 2.0, 4.0, 10.0)
# how result files describe the heatmaps' colours
THRESHOLD_SCALE = {"values": "v / (v + threshold)", "colormap": "jet"}


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


def pyplot():
    """matplotlib's ``pyplot`` on the file-only ``Agg`` backend (figures are written, never shown)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def threshold_scale(maps: torch.Tensor, threshold: float) -> torch.Tensor:
    """Map values to [0, 1) by ``v / (v + threshold)``: the threshold sits mid-scale, twice it at 2/3, ten times it
    at 0.91. The scale never saturates (a very high score stays distinguishable from a high one) and is the same
    for every image of a task."""
    if not threshold > 0:
        raise ValueError(f"the heatmap scale needs a positive threshold, got {threshold}")
    v = maps.clamp(min=0)
    return v / (v + threshold)


def threshold_overlay(images: torch.Tensor, maps: torch.Tensor, threshold: float) -> torch.Tensor:
    """Overlays on the task's ``threshold_scale``: green at the threshold, red far above it, alike for every image."""
    return overlay(images, threshold_scale(maps, threshold), vmin=0.0, vmax=1.0)


def draw_threshold_colorbar(ax, threshold: float, label: str = "anomaly map") -> None:
    """Draw the colour bar of ``threshold_overlay`` into the matplotlib axes ``ax``, ticked in map values, with
    the threshold marked."""
    ticks = [threshold_scale(torch.tensor(t * threshold), threshold).item() for t in THRESHOLD_TICKS]
    ax.imshow(np.linspace(1, 0, 256)[:, None], aspect="auto", cmap=jet_colormap(), extent=(0, 1, 0, 1))
    ax.set_xticks([])
    ax.yaxis.tick_right()
    ax.set_yticks(ticks, [f"{t * threshold:.3g}" for t in THRESHOLD_TICKS], fontsize=7)
    ax.axhline(0.5, color="black", linewidth=1.2)
    ax.text(-0.15, 0.5, "threshold", rotation=90, va="center", ha="right", fontsize=7, transform=ax.transAxes)
    ax.set_title(label, fontsize=7)


def jet_colormap():
    """``jet`` as a matplotlib colormap (for colour bars matching the overlays)."""
    from matplotlib.colors import ListedColormap

    return ListedColormap(jet(torch.linspace(0, 1, 256).view(1, 1, 256, 1))[0, :, :, 0].T.numpy())


def heatmap_figure(images: torch.Tensor, maps: torch.Tensor, vmin: float, vmax: float):
    """A matplotlib figure: each input ``[B, 3, H, W]`` beside its anomaly map ``[B, 1, H, W]`` overlaid on one
    fixed ``vmin``-``vmax`` colour range, with the colour bar of that range."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    plt = pyplot()
    rows = len(images)
    figure, axes = plt.subplots(rows, 2, figsize=(4.4, 2.1 * rows), squeeze=False, layout="constrained")
    images, maps = images.float().cpu(), maps.float().cpu()
    views = overlay(images, maps, vmin, vmax)
    for row in range(rows):
        titles = ("input", f"anomaly map (max {float(maps[row].max()):.3g})")
        for ax, picture, title in zip(axes[row], (images[row], views[row]), titles):
            ax.imshow(picture.clamp(0, 1).permute(1, 2, 0).numpy())
            ax.set_axis_off()
            ax.set_title(title, fontsize=7)
    bar = figure.colorbar(ScalarMappable(Normalize(vmin, vmax), jet_colormap()), ax=axes, shrink=0.8)
    bar.ax.tick_params(labelsize=7)
    return figure


def save_png(image: torch.Tensor, path: str | BinaryIO) -> str | BinaryIO:
    """Write an RGB image ``[3, H, W]`` in [0, 1] as an 8-bit PNG to a file path (folders made) or a binary file."""
    pixels = (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    if isinstance(path, str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")
    return path


def heatmap_name(path: str, slice_index: int | None, root: str) -> str:
    """``<path relative to the input>.png``, or ``<path>/slice<i>.png`` for a volume's slice: unique per input
    (the extension stays, so ``scan.png`` and ``scan.jpeg`` do not share a file; the folders stay)."""
    rel = os.path.relpath(path, root) if os.path.isdir(root) else os.path.basename(path)
    return os.path.join(rel, f"slice{slice_index:04d}.png") if slice_index is not None else f"{rel}.png"


def episode_strip(batch: dict) -> torch.Tensor:
    """Query and its K supports side by side, ``[B, 3, S, (K + 1) S]``, for TensorBoard (``TensorBoardEpisodes``).

    With cached teacher features the episode's images are under ``query_image`` and ``support_image``.
    """
    query, support = batch.get("query_image", batch["query"]), batch.get("support_image", batch["support"])
    images = torch.cat([query.unsqueeze(1), support], dim=1)  # [B, K+1, 3, S, S]
    return torch.cat(images.unbind(1), dim=-1)
