"""Task folders (``<task>/train/good``, ``val/<kind>``, ``test/<kind>``) and MedIAnomaly ``data.json`` lists as
MONAI datalists: dicts with ``image`` (path), ``label`` (0 normal, 1 abnormal), ``kind``, ``task``, ``modality``.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from monai_d2fad.transforms.io import IMAGE_EXTENSIONS
from monai_d2fad.transforms.presets import normalize_modality

__all__ = [
    "NORMAL_KIND",
    "SPLITS",
    "Task",
    "discover_tasks",
    "folder_items",
    "is_dicom_file",
    "is_image_file",
    "leave_one_task_out",
    "list_images",
    "load_task",
    "task_dirs",
]

SPLITS = ("train", "val", "test")
NORMAL_KIND = "good"


def is_image_file(name: str) -> bool:
    """Whether ``name`` has one of the readable image extensions (hidden files excluded)."""
    name = os.path.basename(name)
    lower = name.lower()
    return not name.startswith(".") and any(lower.endswith(ext) for ext in IMAGE_EXTENSIONS)


def is_dicom_file(path: str) -> bool:
    """A DICOM Part 10 file whatever its name ("DICM" after the 128-byte preamble): PACS exports lack ``.dcm``."""
    try:
        with open(path, "rb") as f:
            return f.read(132)[128:] == b"DICM"
    except OSError:
        return False


def list_images(root: str, exclude: str | None = None) -> list[dict]:
    """A datalist ``[{"image": path}]`` of the image files under ``root`` (recursively, sorted), or of one file.

    Files are recognised by extension, and extension-less files by the DICOM signature. ``exclude``, a folder inside
    ``root`` (such as the normal references kept beside the images to score), is left out.
    """
    if os.path.isfile(root):
        if not (is_image_file(root) or is_dicom_file(root)):
            raise ValueError(f"{root} is not an image file ({', '.join(IMAGE_EXTENSIONS)})")
        return [{"image": os.path.abspath(root)}]
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root} is neither an image file nor a folder")
    skip = os.path.abspath(exclude) if exclude and os.path.abspath(exclude) != os.path.abspath(root) else None
    found = [
        os.path.join(d, f)
        for d, _, files in sorted(os.walk(root))
        if skip is None or os.path.commonpath([skip, os.path.abspath(d)]) != skip
        for f in sorted(files)
        if is_image_file(f) or ("." not in f and is_dicom_file(os.path.join(d, f)))
    ]
    if not found:
        raise ValueError(f"{root}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return [{"image": os.path.abspath(p)} for p in found]


@dataclass
class Task:
    """One anomaly-detection task: a name, a modality preset and labelled items per split."""

    name: str
    root: str
    modality: str = "generic"
    splits: dict[str, list[dict]] = field(default_factory=dict)

    def items(self, split: str) -> list[dict]:
        """The datalist of ``split``; a clear error if the task has no such split."""
        if split not in self.splits:
            raise KeyError(f"task {self.name!r} ({self.root}) has no {split!r} split; it has {sorted(self.splits)}")
        return [dict(item) for item in self.splits[split]]

    def normal(self, split: str = "train") -> list[dict]:
        return [item for item in self.items(split) if item["label"] == 0]

    def require_normal(self, count: int, split: str = "train") -> list[dict]:
        """The normal items of ``split``, with an error if there are fewer than ``count``."""
        normal = self.normal(split)
        if len(normal) < count:
            raise ValueError(
                f"task {self.name!r} has {len(normal)} normal images in {split!r}, needs at least {count} "
                f"(K supports plus one query)"
            )
        return normal

    def __repr__(self) -> str:
        counts = ", ".join(f"{s}={len(v)}" for s, v in self.splits.items())
        return f"Task({self.name!r}, modality={self.modality!r}, {counts})"


def _item(path: str, kind: str, task: str, modality: str) -> dict:
    return {"image": path, "label": int(kind.lower() != NORMAL_KIND), "kind": kind, "task": task, "modality": modality}


def folder_items(split_dir: str, task: str = "", modality: str = "generic") -> list[dict]:
    """Labelled items of a split folder: ``good`` (any case) is normal, every other kind folder abnormal."""
    items = []
    for kind in sorted(os.listdir(split_dir)):
        kind_dir = os.path.join(split_dir, kind)
        if not os.path.isdir(kind_dir):
            continue
        for root, _, files in sorted(os.walk(kind_dir)):
            items += [_item(os.path.join(root, f), kind, task, modality) for f in sorted(files) if is_image_file(f)]
    if not items:
        raise ValueError(f"{split_dir}: no images found (expected {split_dir}/good/*.png and abnormal kind folders)")
    return items


def _json_split(entries: dict, base: str, task: str, modality: str) -> list[dict]:
    """A MedIAnomaly split: ``{"0": [normal paths], "1": [abnormal paths]}`` relative to the task folder."""
    items = []
    for label, paths in sorted(entries.items()):
        if str(label) not in ("0", "1"):
            continue  # e.g. MedIAnomaly's unlabeled pools
        kind = NORMAL_KIND if str(label) == "0" else "abnormal"
        items += [_item(os.path.join(base, p), kind, task, modality) for p in paths]
    return items


def _modality(task_dir: str, default: str | None) -> str:
    meta = os.path.join(task_dir, "meta.json")
    if default is None and os.path.isfile(meta):
        with open(meta, encoding="utf-8") as f:
            default = json.load(f).get("modality")
    try:
        return normalize_modality(default)
    except ValueError:
        return "generic"


def load_task(task_dir: str, modality: str | None = None) -> Task:
    """Read one task folder (split folders, or a MedIAnomaly ``data.json``); modality from ``meta.json`` if any."""
    task_dir = os.path.abspath(task_dir)
    name = os.path.basename(task_dir.rstrip(os.sep))
    modality = _modality(task_dir, modality)
    task = Task(name, task_dir, modality)
    data_json = os.path.join(task_dir, "data.json")
    if os.path.isfile(data_json):
        with open(data_json, encoding="utf-8") as f:
            listing = json.load(f)
        for split in SPLITS:
            if split in listing:
                task.splits[split] = _json_split(listing[split], task_dir, name, modality)
    else:
        for split in SPLITS:
            split_dir = os.path.join(task_dir, split)
            if os.path.isdir(split_dir):
                task.splits[split] = folder_items(split_dir, name, modality)
    if "train" not in task.splits:
        raise ValueError(f"{task_dir}: not a task folder (no train/ split and no data.json with a 'train' list)")
    if not task.normal("train"):
        raise ValueError(f"{task_dir}: train split has no normal images (a 'good' folder, any case)")
    return task


def discover_tasks(root: str, modality: str | None = None) -> dict[str, Task]:
    """All tasks under ``root`` (each a folder with ``train/`` or ``data.json``), or ``root`` itself if it is one."""
    return {name: load_task(path, modality) for name, path in task_dirs(root).items()}


def task_dirs(root: str) -> dict[str, str]:
    """The task folders under ``root`` by name (or ``root`` itself if it is one), without reading them: callers
    that use some tasks load only those, so a broken task they do not use cannot stop them."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"task root {root} does not exist")
    if looks_like_task(root):
        return {os.path.basename(root.rstrip(os.sep)): root}
    found = {
        name: os.path.join(root, name) for name in sorted(os.listdir(root)) if looks_like_task(os.path.join(root, name))
    }
    if not found:
        raise ValueError(f"{root}: no tasks found (expected <task>/train/good/ folders or <task>/data.json)")
    return found


def looks_like_task(path: str) -> bool:
    """A visible folder with a ``train/`` split or a ``data.json`` list."""
    if os.path.basename(os.path.normpath(path)).startswith("."):
        return False
    return os.path.isdir(os.path.join(path, "train")) or os.path.isfile(os.path.join(path, "data.json"))


def leave_one_task_out(
    tasks: dict[str, Task], test_task: str | None, train_tasks: Sequence[str] | Iterable[str] | None = None
) -> tuple[list[Task], Task | None]:
    """Training tasks (all but ``test_task``, or the given names) and the held-out test task.

    ``test_task=None`` holds no task out (the model to ship, trained on every task; validation still uses only
    their ``val`` splits): the second item is then ``None``.
    """
    if test_task is not None and test_task not in tasks:
        raise KeyError(f"test task {test_task!r} not found; tasks are {sorted(tasks)}")
    names = [n for n in tasks if n != test_task] if train_tasks is None else list(train_tasks)
    missing = [n for n in names if n not in tasks]
    if missing:
        raise KeyError(f"training tasks {missing} not found; tasks are {sorted(tasks)}")
    if test_task in names:
        raise ValueError(f"test task {test_task!r} cannot also be a training task")
    if not names:
        raise ValueError("no training tasks left: leave-one-task-out needs at least two tasks")
    return [tasks[n] for n in names], None if test_task is None else tasks[test_task]


def normal_items(tasks: Sequence[Task], max_per_task: int | None = None, seed: int = 0, minimum: int = 1) -> list[dict]:
    """The normal ``train`` items of ``tasks`` (several tasks: multi-class training), at most ``max_per_task`` of
    each (a seeded subsample, for quick runs); a task with fewer than ``minimum`` is an error naming it."""
    items = []
    for task in tasks:
        normal = task.require_normal(minimum)
        if max_per_task and len(normal) > max_per_task:
            rng = np.random.default_rng([seed, zlib.crc32(task.name.encode())])
            normal = [normal[i] for i in sorted(rng.choice(len(normal), max_per_task, replace=False))]
        items += normal
    return items


def select_tasks(tasks: dict[str, Task], names: Sequence[str] | None) -> list[Task]:
    """The tasks named (all, sorted by name, for None), with an error naming the missing ones."""
    names = sorted(tasks) if names is None else list(names)
    missing = [n for n in names if n not in tasks]
    if missing:
        raise KeyError(f"tasks {missing} not found; tasks are {sorted(tasks)}")
    return [tasks[n] for n in names]
