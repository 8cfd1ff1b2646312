"""Evaluation sets: a task's split scored against one saved list of K normal references, and the dataset of their
images. The Ignite evaluator (``engines.FewShotEvaluator``) and the protocol both read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from monai_d2fad.data.images import ImageDataset
from monai_d2fad.data.support import read_support_list, write_support_lists
from monai_d2fad.data.tasks import Task

__all__ = ["EvaluationDataset", "EvaluationSet", "evaluation_items", "evaluation_sets", "set_group"]


@dataclass
class EvaluationSet:
    """One few-shot evaluation: a task's images of one split scored against one list of K supports."""

    name: str
    task: Task
    support: list[str]
    split: str = "test"


def evaluation_sets(
    tasks: Sequence[Task], split: str, shots: int | Sequence[int], seeds: int | Sequence[int], support_dir: str
) -> list[EvaluationSet]:
    """One set per (task, K, seed), supports from the saved lists in ``support_dir`` (written if missing)."""
    shot_list = [shots] if isinstance(shots, int) else list(shots)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    sets = []
    for task in tasks:
        task.items(split)  # a clear error now if the split is missing
        lists = write_support_lists(task, support_dir, shot_list, seed_list)
        for (k, seed), path in sorted(lists.items()):
            sets.append(
                EvaluationSet(f"{task.name}/{k}-shot/seed{seed}", task, read_support_list(path, task.root), split)
            )
    return sets


class EvaluationDataset(torch.utils.data.Dataset):
    """Every image of the sets' splits once, each task's images decoded once.

    An item carries ``group`` (``"task/split"``): the evaluator scores it against every set of that group (``groups``
    maps a group to its set names), so that one network pass over an image serves all of its sets.

    ``data`` replaces the images to score (the ``validate#dataset#data`` that MONAI FL fills in): items ``{"image",
    "label", "group"}`` (``evaluation_items``' form), each group one of the sets'.
    """

    def __init__(
        self,
        sets: Sequence[EvaluationSet],
        image_size: int = 128,
        cache_dir: str | None = None,
        progress: bool = False,
        data: Sequence[dict] | None = None,
    ):
        self.sets = list(sets)
        self.groups: dict[str, list[str]] = {}
        for s in self.sets:
            self.groups.setdefault(set_group(s), []).append(s.name)
        items: dict[str, list[dict]] = {}
        for item in evaluation_items(self.sets) if data is None else data:
            if item.get("group") not in self.groups:
                raise ValueError(f"{item.get('image')}: group {item.get('group')!r} is none of {sorted(self.groups)}")
            items.setdefault(item["group"], []).append({k: v for k, v in item.items() if k != "group"})
        self.images = {
            group: ImageDataset(group_items, image_size, cache_dir=cache_dir, progress=progress)
            for group, group_items in items.items()
        }
        self.index = [(group, i) for group, images in self.images.items() for i in range(len(images))]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, index: int) -> dict:
        group, i = self.index[index]
        item = self.images[group][i]
        return {"image": item["image"], "label": item["label"], "group": group, "path": item["path"]}


def evaluation_items(sets: Sequence[EvaluationSet]) -> list[dict]:
    """Every image the sets score, once: ``{"image", "label", "group", ...}`` (the split's datalist items)."""
    groups = {set_group(s): s for s in sets}
    return [{**item, "group": group} for group, s in groups.items() for item in s.task.items(s.split)]


def set_group(s: EvaluationSet) -> str:
    """The images a set scores, as a name: ``"task/split"``."""
    return f"{s.task.name}/{s.split}"
