"""Evaluation sets: a task's split scored against one saved list of K normal references, and the dataset of their
images. The Ignite evaluator (``engines.FewShotEvaluator``) and the protocol both read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from monai_d2fad.data.images import ImageDataset
from monai_d2fad.data.support import read_support_list, write_support_lists
from monai_d2fad.data.tasks import Task

__all__ = ["EvaluationDataset", "EvaluationSet", "evaluation_sets"]


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
    """Every image of every set's split, tagged with its set name; each task's images are decoded once."""

    def __init__(
        self, sets: Sequence[EvaluationSet], image_size: int = 128, cache_dir: str | None = None, progress: bool = False
    ):
        self.sets = list(sets)
        self.images: dict[tuple[str, str], ImageDataset] = {}
        for s in self.sets:
            key = (s.task.name, s.split)
            if key not in self.images:
                self.images[key] = ImageDataset(
                    s.task.items(s.split), image_size, cache_dir=cache_dir, progress=progress
                )
        self.index = [(s, i) for s in self.sets for i in range(len(self.images[(s.task.name, s.split)]))]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, index: int) -> dict:
        s, i = self.index[index]
        item = self.images[(s.task.name, s.split)][i]
        return {"image": item["image"], "label": item["label"], "set": s.name, "path": item["path"]}
