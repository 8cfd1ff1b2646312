"""The table of scored images that ``predict`` and the bundle's inference write: a CSV row and a map file per image;
``PredictionWriter`` writes it from an Ignite engine (the bundle's inference)."""

from __future__ import annotations

import csv
import os

import nibabel as nib
import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.utils import look_up_option

from monai_d2fad.task_package import RegisteredTask
from monai_d2fad.visualize import heatmap_name, save_png

__all__ = ["MAP_FORMATS", "PredictionTable", "PredictionWriter"]

# how each image's anomaly map is written: the overlay on the task's colour scale, the raw map values, or not at all
MAP_FORMATS = ("png", "nifti", "none")


class PredictionTable:
    """Writes ``path, slice, score, anomalous, threshold, heatmap`` rows (with a header) to ``folder/filename`` and
    each image's map under ``folder/heatmaps/`` (``heatmap`` is its path relative to ``folder``, empty for ``none``).

    Args:
        folder: where the CSV and the maps go.
        root: the scored input (file or folder): map names keep the images' paths relative to it, so they are unique.
        threshold: the decision threshold written on every row.
        map_format: ``png`` (the overlay on the task's threshold colour scale, for people), ``nifti`` (the raw map
            values as a float32 ``.nii.gz``, for tools) or ``none``.
    """

    COLUMNS = ("path", "slice", "score", "anomalous", "threshold", "heatmap")

    def __init__(
        self, folder: str, root: str, threshold: float, map_format: str = "png", filename: str = "predictions.csv"
    ):
        self.folder, self.root, self.threshold = folder, root, float(threshold)
        self.map_format = look_up_option(map_format, MAP_FORMATS)
        os.makedirs(folder, exist_ok=True)
        self.file = open(os.path.join(folder, filename), "w", newline="", encoding="utf-8")  # noqa: SIM115 (closed by close)
        self.writer = csv.writer(self.file)
        self.writer.writerow(self.COLUMNS)

    def add(
        self,
        path: str,
        slice_index: int | None,
        score: float,
        anomalous: bool,
        overlay: torch.Tensor | None,
        map_: torch.Tensor,
    ) -> None:
        """One image: its row, and its map file (``overlay [3, H, W]`` for png, ``map_ [1, H, W]`` for nifti)."""
        name = ""
        if self.map_format != "none":
            name = os.path.join("heatmaps", heatmap_name(path, slice_index, self.root))  # ends in .png
            if self.map_format == "nifti":
                name = name.removesuffix(".png") + ".nii.gz"
            target = os.path.join(self.folder, name)
            if self.map_format == "png":
                save_png(overlay, target)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                values = map_[0].float().cpu().numpy().T.astype(np.float32)  # NIfTI's first axis is x (width)
                nib.save(nib.Nifti1Image(values, np.eye(4)), target)
        slice_cell = "" if slice_index is None else slice_index
        self.writer.writerow([path, slice_cell, f"{score:.6g}", int(anomalous), f"{self.threshold:.6g}", name])

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> PredictionTable:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PredictionWriter:
    """Judges every batch an evaluator scored with its registered task (``RegisteredTask.judge``: the score, the
    decision at the task's threshold and the map's overlay, as in ``predict`` and the Deploy report) and writes the
    rows and maps with ``PredictionTable``.

    Args:
        task: the registered task of the network (``inference.AnomalyMapNetwork.task``); it needs a threshold.
        output_dir: where ``filename`` and ``heatmaps/`` go.
        root: the folder of the scored images (map names keep their paths relative to it).
        map_format: ``png``, ``nifti`` or ``none`` (see ``PredictionTable``).
        pred_key: the key of the maps in the (decollated) engine output.
    """

    def __init__(
        self,
        task: RegisteredTask,
        output_dir: str,
        root: str,
        map_format: str = "png",
        filename: str = "scores.csv",
        pred_key: str = "pred",
    ):
        if task.threshold is None:
            raise ValueError("PredictionWriter needs a task with a threshold (AnomalyMapNetwork(threshold='loo'))")
        self.task, self.output_dir, self.root = task, output_dir, root
        self.map_format, self.filename, self.pred_key = map_format, filename, pred_key
        self.table: PredictionTable | None = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._open)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self._close)
        engine.add_event_handler(Events.EXCEPTION_RAISED, self._failed)

    def _open(self, engine: Engine) -> None:
        threshold = float(self.task.threshold["value"])
        self.table = PredictionTable(self.output_dir, self.root, threshold, self.map_format, self.filename)

    def _close(self, engine: Engine) -> None:
        if self.table is not None:
            self.table.close()
            self.table = None

    def _failed(self, engine: Engine, error: Exception) -> None:
        """Close the table and raise again (a handler of Ignite's ``EXCEPTION_RAISED`` would otherwise swallow it)."""
        self._close(engine)
        raise error

    def __call__(self, engine: Engine) -> None:
        items, outputs = engine.state.batch, engine.state.output
        images = torch.stack([torch.as_tensor(item["image"]) for item in items])
        maps = torch.stack([torch.as_tensor(out[self.pred_key]) for out in outputs])
        judged = self.task.judge(images, maps, overlays=self.map_format == "png")
        for i, item in enumerate(items):
            overlay = None if judged.overlays is None else judged.overlays[i]
            score, anomalous = float(judged.scores[i]), bool(judged.anomalous[i])
            self.table.add(str(item["path"]), item.get("slice"), score, anomalous, overlay, maps[i])
