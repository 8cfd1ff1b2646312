"""TensorBoard images of a run: one tag per kind of image, all through the run's one ``SummaryWriter``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from ignite.engine import Engine, Events
from torch.utils.tensorboard import SummaryWriter

from monai_d2fad.visualize import episode_strip, heatmap_figure

__all__ = ["TensorBoardEpisodes", "TensorBoardHeatmaps"]


class _EpochImage:
    """Writes one picture of ``engine`` under ``tag`` at each epoch end, at the engine's (global) epoch."""

    tag = ""

    def __init__(self, summary_writer: SummaryWriter, tag: str | None = None):
        self.writer = summary_writer
        self.tag = tag or self.tag

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        self.write(engine, engine.state.epoch)
        self.writer.flush()

    def write(self, engine: Engine, step: int) -> None:
        raise NotImplementedError


class TensorBoardEpisodes(_EpochImage):
    """The last training batch's first episode (query, then its K supports) under ``train/episode``."""

    tag = "train/episode"

    def write(self, engine: Engine, step: int) -> None:
        strip = episode_strip(engine.state.batch)[0]
        self.writer.add_image(self.tag, strip.clamp(0, 1), step)


class TensorBoardHeatmaps(_EpochImage):
    """Inputs and their anomaly maps side by side under ``val/heatmaps``, on one fixed colour range with its colour
    bar, so that epochs and images compare (a batch's own range would make every normal image look anomalous).

    Args:
        summary_writer: the run's writer (one writer, one event file per run).
        value_range: the map values at the two ends of the colour scale.
        max_images: images shown from the last batch of the epoch.
        output_transform: the ``(images, maps)`` of an engine output (default: its ``image`` and ``map``).
    """

    tag = "val/heatmaps"

    def __init__(
        self,
        summary_writer: SummaryWriter,
        value_range: tuple[float, float] = (0.0, 1.0),
        max_images: int = 4,
        output_transform: Callable[[dict], tuple[torch.Tensor, torch.Tensor]] | None = None,
        tag: str | None = None,
    ):
        super().__init__(summary_writer, tag)
        if not value_range[1] > value_range[0]:
            raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}")
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.max_images = max_images
        self.output_transform = output_transform or (lambda out: (out["image"], out["map"]))

    def write(self, engine: Engine, step: int) -> None:
        images, maps = self.output_transform(engine.state.output)
        figure = heatmap_figure(images[: self.max_images], maps[: self.max_images], *self.value_range)
        self.writer.add_figure(self.tag, figure, step, close=True)
