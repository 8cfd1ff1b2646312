"""Ablation grids of trained models (``scripts/dcam_ablation.py``, ``scripts/two_students_ablation.py``): one
multi-class training per cell with a method's bundle, scored on every task's ``test`` split, one CSV row per cell
and task (a rerun skips finished cells)."""

from __future__ import annotations

import argparse
import csv
import os
import statistics
from collections.abc import Sequence

from monai_d2fad.bundle_runs import METHOD_CONFIGS
from monai_d2fad.data import ImageDataset, Task
from monai_d2fad.methods.base import TaskDetector
from monai_d2fad.protocol.evaluation import score_split
from monai_d2fad.protocol.training import train_with_bundle

__all__ = ["GridFile", "add_grid_arguments", "auroc_cells", "score_tasks", "test_splits", "train_cell"]


class GridFile:
    """The CSV of a grid: ``columns`` (other values of a row are not written); a cell is named by the values of its
    ``key`` columns."""

    def __init__(self, path: str, columns: Sequence[str], key: Sequence[str]):
        self.path, self.columns, self.key = path, list(columns), list(key)

    def rows(self) -> list[dict]:
        if not os.path.isfile(self.path):
            return []
        with open(self.path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    def done(self) -> set[tuple]:
        """The cells already in the file."""
        return {tuple(r[k] for k in self.key) for r in self.rows()}

    def append(self, rows: list[dict]) -> None:
        new = not os.path.isfile(self.path)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerows(rows)


def add_grid_arguments(parser: argparse.ArgumentParser, output: str) -> None:
    """The options every grid shares: data, output folder and the training budget of each cell."""
    parser.add_argument("--data_dir", default="../shared/data/medfsad")
    parser.add_argument("--output", default=output)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--per_task", type=int, default=250, help="training images per task")
    parser.add_argument("--image_size", type=int, default=64, help="64 px keeps the trainings short on 2 cores")
    parser.add_argument("--teacher", default="efficientnet_lite0")


def train_cell(
    method: str, args: argparse.Namespace, tasks: Sequence[str], folder: str, **settings
) -> tuple[str, float]:
    """Train one multi-class model of ``method`` on every task's ``train/good`` with the cell's bundle ``settings``
    into ``<output>/<folder>``; returns its checkpoint and training seconds (a finished training is reused)."""
    overrides = {
        "dataset_dir": os.path.abspath(args.data_dir),
        "train_tasks": sorted(tasks),
        "epochs": args.epochs,
        "max_train_per_task": args.per_task,
        "teacher": args.teacher,
        "image_size": args.image_size,
        "output_dir": os.path.join(args.output, folder),
        **settings,
    }
    return train_with_bundle(overrides, os.path.join(METHOD_CONFIGS[method], "train.json"))


def test_splits(tasks: dict[str, Task], image_size: int) -> dict[str, ImageDataset]:
    """Every task's ``test`` split, read once for all cells."""
    return {name: ImageDataset(task.items("test"), image_size, progress=False) for name, task in tasks.items()}


def score_tasks(detector: TaskDetector, tests: dict[str, ImageDataset]) -> dict[str, dict]:
    """Per task: ``auroc`` and ``aupr`` (4 decimals) and ``queries_per_second`` of ``detector`` on its test split."""
    out = {}
    for name, images in tests.items():
        metrics, speed = score_split(detector, images)
        out[name] = {k: round(metrics[k], 4) for k in ("auroc", "aupr")} | {"queries_per_second": round(speed, 1)}
    return out


def auroc_cells(cell: dict[str, dict], tasks: Sequence[str]) -> str:
    """A markdown table's AUROC (%) cells for ``tasks`` and their mean, from a cell's rows by task."""
    aurocs = [100 * float(cell[t]["auroc"]) for t in tasks]
    return " | ".join(f"{a:.1f}" for a in aurocs) + f" | {statistics.mean(aurocs):.1f}"
