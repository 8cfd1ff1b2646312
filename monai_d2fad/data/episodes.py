"""Episodic sampling for dual-distillation training: one normal query and K other normal images of its task."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from monai_d2fad.data.features import TeacherFeatureCache
from monai_d2fad.data.images import ImageDataset
from monai_d2fad.data.tasks import Task, normal_items
from monai_d2fad.transforms.presets import training_augmentation

__all__ = ["EpisodeDataset"]


class EpisodeDataset(torch.utils.data.Dataset):
    """One item per normal training image: ``{"query": [3,S,S], "support": [K,3,S,S], "task": name, ...}``.

    Supports come from the query's own task, never include the query, and are re-drawn every epoch
    (call ``set_epoch``); draws depend only on ``(seed, epoch, index)``, so runs are reproducible and
    independent of loader workers. Images are decoded once and cached. With ``augment`` and several loader
    workers, use ``monai.data.DataLoader`` so that each worker gets its own random seed.

    Args:
        tasks: training tasks (their ``train`` split's normal images are used).
        shots: K, supports per episode.
        seed: seed of the support draws (and of ``max_per_task`` subsampling).
        image_size: side of the square images.
        augment: apply ``training_augmentation`` to the query and each support independently.
        max_per_task: use at most this many normal images per task (quick runs).
        teacher_features: a ``TeacherFeatureCache``: encode every image with the frozen teacher once, and give the
            teacher's features (lists of four tensors, strides 4-32) as ``query`` and ``support``, so that training
            runs only the student; the images are then ``query_image`` and ``support_image``. Not with ``augment``
            (augmented images differ every time).
        data: the normal training images instead of ``tasks``', as items ``{"image": path, "task": name}`` (the
            bundle's ``train#dataset#data``, which MONAI Label and MONAI FL fill in); ``max_per_task`` is then not
            used.
        on_error, cache_dir, preset: see ``ImageDataset``.
    """

    def __init__(
        self,
        tasks: Sequence[Task] | None,
        shots: int,
        seed: int = 0,
        image_size: int = 128,
        augment: bool = False,
        max_per_task: int | None = None,
        on_error: str = "raise",
        cache_dir: str | None = None,
        progress: bool = False,
        teacher_features: TeacherFeatureCache | None = None,
        data: Sequence[dict] | None = None,
        **preset,
    ):
        if shots < 1:
            raise ValueError(f"shots must be >= 1, got {shots}")
        if augment and teacher_features is not None:
            raise ValueError("teacher_features caches features of fixed images: it cannot be used with augment=True")
        if not tasks and not data:
            raise ValueError("EpisodeDataset needs at least one task (tasks, or data items naming their task)")
        self.shots, self.seed, self.epoch = int(shots), int(seed), 0
        items = list(data) if data else normal_items(tasks, max_per_task, seed, minimum=shots + 1)
        missing = [item for item in items if "task" not in item]
        if missing:
            raise ValueError(f"data items need a 'task' (whose normals are the supports): {missing[0]}")
        self.images = ImageDataset(
            items, image_size, on_error=on_error, cache_dir=cache_dir, progress=progress, **preset
        )
        self.pools: dict[str, list[int]] = {}
        for i, item in enumerate(self.images.items):
            self.pools.setdefault(item["task"], []).append(i)
        for name in dict.fromkeys(item["task"] for item in items):
            if len(self.pools.get(name, [])) < shots + 1:
                raise ValueError(f"task {name!r} has fewer than K+1 = {shots + 1} readable normal images")
        self.task_of = {i: name for name, idx in self.pools.items() for i in idx}
        self.augment = training_augmentation(image_size) if augment else None
        if self.augment is not None:
            self.augment.set_random_state(seed)
        self.features = None if teacher_features is None else teacher_features.encode(self.images)

    def set_epoch(self, epoch: int) -> None:
        """Re-draw the supports: call at the start of every epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.images)

    def support_indices(self, index: int) -> list[int]:
        pool = [i for i in self.pools[self.task_of[index]] if i != index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return [pool[j] for j in rng.choice(len(pool), self.shots, replace=False)]

    def _image(self, index: int) -> torch.Tensor:
        item = self.images[index]
        return (self.augment(item) if self.augment is not None else item)["image"]

    def __getitem__(self, index: int) -> dict:
        support = self.support_indices(index)
        images = {"query": self._image(index), "support": torch.stack([self._image(i) for i in support])}
        if self.features is not None:  # the network gets the cached features; the images stay for TensorBoard
            images = {
                "query": [f[index].float() for f in self.features],
                "support": [f[support].float() for f in self.features],
                "query_image": images["query"],
                "support_image": images["support"],
            }
        return {**images, "task": self.task_of[index], "query_path": self.images.items[index]["image"]}
