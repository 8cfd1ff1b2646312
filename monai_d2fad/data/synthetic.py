"""Synthetic demo tasks: small textured images with local anomalies, written as real PNG files in the task layout.

They are synthetic (not medical) and exist for offline demos and tests; every task and file name says so.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence

import numpy as np
from monai.utils import look_up_option
from PIL import Image

from monai_d2fad.data.tasks import Task, discover_tasks, looks_like_task

__all__ = ["SYNTHETIC_TASKS", "discover_or_make_synthetic", "make_synthetic_tasks"]

logger = logging.getLogger(__name__)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:size, 0:size].astype(np.float32) / size


def _stripes(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = _grid(size)
    freq, phase = 6 + rng.normal(0, 0.3), rng.uniform(0, 2 * np.pi)
    gray = 0.5 + 0.35 * np.sin(2 * np.pi * freq * (x + 0.2 * y) + phase)
    return np.stack([gray, gray, gray], -1)


def _checker(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = _grid(size)
    n, shift = 8, rng.uniform(0, 1 / 8, 2)
    board = ((np.floor((x + shift[0]) * n) + np.floor((y + shift[1]) * n)) % 2).astype(np.float32)
    gray = 0.25 + 0.5 * board
    return np.stack([gray, 0.9 * gray, 0.8 * gray], -1)


def _rings(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = _grid(size)
    cy, cx = 0.5 + rng.normal(0, 0.02, 2)
    r = np.hypot(x - cx, y - cy)
    disc = (r < 0.45).astype(np.float32)
    gray = disc * (0.55 + 0.25 * np.cos(2 * np.pi * 5 * r + rng.uniform(0, 0.5)))
    return np.stack([gray, 0.45 * gray, 0.25 * gray], -1)


def _cells(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = _grid(size)
    img = np.stack([np.full_like(x, 0.92), np.full_like(x, 0.75), np.full_like(x, 0.85)], -1)
    for cy, cx in rng.uniform(0, 1, (18, 2)):
        nucleus = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 0.025**2))[..., None]
        img = img * (1 - 0.55 * nucleus) + 0.55 * nucleus * np.array([0.45, 0.25, 0.6])
    return img


PATTERNS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "synthetic_stripes": _stripes,
    "synthetic_checker": _checker,
    "synthetic_rings": _rings,
    "synthetic_cells": _cells,
}
SYNTHETIC_TASKS = tuple(PATTERNS)


def _anomaly(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A local defect: a bright or dark blob, or a patch of flat texture."""
    size = img.shape[0]
    y, x = _grid(size)
    cy, cx = rng.uniform(0.25, 0.75, 2)
    radius = rng.uniform(0.08, 0.14)
    blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2))[..., None]
    target = rng.choice([0.05, 0.95])
    return img * (1 - blob) + target * blob


def _write(path: str, img: np.ndarray) -> None:
    Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).save(path)


def make_synthetic_tasks(
    root: str,
    names: Sequence[str] = SYNTHETIC_TASKS,
    n_train: int = 24,
    n_val: int = 6,
    n_test: int = 12,
    size: int = 64,
    seed: int = 0,
) -> list[str]:
    """Write synthetic tasks under ``root`` (``train/good``, ``val/{good,anomaly}``, ``test/{good,anomaly}``).

    Existing task folders are left untouched. Each task is written to a private folder and renamed into place,
    so that processes writing at the same time (e.g. DDP ranks) never see a half-written task.
    Returns the task folders.
    """
    for name in names:
        look_up_option(name, PATTERNS)
    folders = []
    for t, name in enumerate(names):
        task_dir = os.path.join(root, name)
        folders.append(task_dir)
        if os.path.exists(task_dir):
            continue
        os.makedirs(root, exist_ok=True)
        tmp_dir = tempfile.mkdtemp(prefix=f".{name}-", dir=root)
        _write_task(tmp_dir, name, PATTERNS[name], np.random.default_rng([seed, t]), n_train, n_val, n_test, size, seed)
        try:
            os.rename(tmp_dir, task_dir)
        except OSError:  # another process finished the same task first
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return folders


def _write_task(
    task_dir: str,
    name: str,
    pattern: Callable,
    rng: np.random.Generator,
    n_train: int,
    n_val: int,
    n_test: int,
    size: int,
    seed: int,
) -> None:
    layout = [
        ("train", "good", n_train),
        ("val", "good", n_val),
        ("val", "anomaly", n_val),
        ("test", "good", n_test),
        ("test", "anomaly", n_test),
    ]
    for split, kind, n in layout:
        os.makedirs(os.path.join(task_dir, split, kind), exist_ok=True)
        for i in range(n):
            img = pattern(rng, size) + rng.normal(0, 0.02, (size, size, 3))
            if kind == "anomaly":
                img = _anomaly(img, rng)
            _write(os.path.join(task_dir, split, kind, f"{name}_{split}_{kind}_{i:03d}.png"), img)
    with open(os.path.join(task_dir, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(
            {
                "task": name,
                "modality": "generic",
                "synthetic": True,
                "source": "monai_d2fad.data.synthetic",
                "size": size,
                "seed": seed,
            },
            f,
            indent=2,
        )


def discover_or_make_synthetic(root: str, size: int = 64, **kwargs) -> dict[str, Task]:
    """The tasks under ``root``; if it holds none but synthetic ones, the missing synthetic demo tasks are written
    there first (logged). Folders holding other tasks are only read."""
    existing = [n for n in os.listdir(root) if looks_like_task(os.path.join(root, n))] if os.path.isdir(root) else []
    if all(n in SYNTHETIC_TASKS for n in existing):
        if not existing:
            logger.warning("no tasks in %s: writing SYNTHETIC demo tasks there (textures, not medical images)", root)
        make_synthetic_tasks(root, size=size, **kwargs)
    return discover_tasks(root)
