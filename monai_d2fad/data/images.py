"""Decoded, resized images cached with MONAI's ``CacheDataset``/``PersistentDataset``, one preset per modality."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Mapping, Sequence

import torch
from monai.data import CacheDataset, PersistentDataset
from monai.transforms import Compose, Transform
from monai.utils import look_up_option

from monai_d2fad.transforms.io import (
    ITK_EXTENSIONS,
    NIFTI_EXTENSIONS,
    ImageReadError,
    LoadMedicalImaged,
    reraise_read_errors,
)
from monai_d2fad.transforms.presets import modality_transform, normalize_modality

__all__ = ["ImageDataset", "ReadImaged", "expand_slices", "load_image", "read_images"]


def load_image(path: str | os.PathLike, modality: str | None = None, image_size: int = 128, **preset) -> torch.Tensor:
    """Read one file (PNG/JPEG, DICOM, NIfTI, mha/nrrd) into ``[3, image_size, image_size]`` float32 in [0, 1].

    ``preset`` goes to ``transforms.modality_transform`` (e.g. ``slice_index``, ``stain_normalize``).
    Raises ``ImageReadError`` naming the file if it cannot be read.
    """
    with reraise_read_errors():
        settings = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in preset.items()))
        return _pipeline(modality, image_size, settings)({"image": os.fspath(path)})["image"]


@functools.lru_cache(maxsize=16)
def _pipeline(modality: str | None, image_size: int, preset: tuple) -> Compose:
    """One preset pipeline per setting, built once: building one sets up MONAI's image readers."""
    return modality_transform(modality, image_size, **dict(preset))


VOLUME_EXTENSIONS = NIFTI_EXTENSIONS + ITK_EXTENSIONS
ON_ERROR = ("raise", "skip")


def expand_slices(items: Sequence[Mapping], slice_axis: int = -1) -> list[dict]:
    """One item per slice of every 3D volume (NIfTI, mha/nrrd), with its index in ``"slice"``.

    2D images pass through unchanged. The items feed ``ImageDataset``/``ReadImaged``, which read the slice
    (``slice_axis`` must match the preset's). An unreadable volume stays one item: reading it raises the
    ``ImageReadError`` that names it, where the caller handles errors per file (``predict`` skips it).
    """
    out = []
    for item in items:
        if not str(item["image"]).lower().endswith(VOLUME_EXTENSIONS):
            out.append(dict(item))  # PNG/JPEG/DICOM files are single images: no need to open them here
            continue
        try:
            with reraise_read_errors():
                volume = LoadMedicalImaged(slice_axis=slice_axis).raw(item["image"])
        except ImageReadError:
            out.append(dict(item))
            continue
        if volume.dim() == 3:  # [C, x, y]: a 2D image
            out.append(dict(item))
            continue
        axis = slice_axis % 3 + 1
        out += [dict(item, slice=i) for i in range(volume.shape[axis])]
    return out


class ReadImaged(Transform):
    """Item dict -> same dict with ``image`` decoded by the preset of its ``modality`` and ``path`` kept.

    Args:
        modality: preset for items without a ``modality`` entry.
        on_error: ``"raise"`` an ``ImageReadError``, or ``"skip"``: warn and return None (the bulk mode).
    """

    def __init__(self, image_size: int = 128, modality: str | None = None, on_error: str = "raise", **preset):
        on_error = look_up_option(on_error, ON_ERROR)
        self.image_size, self.default, self.on_error, self.preset = image_size, modality, on_error, preset
        self._pipelines: dict[str, Compose] = {}

    def pipeline(self, modality: str | None) -> Compose:
        key = normalize_modality(modality or self.default)
        if key not in self._pipelines:
            self._pipelines[key] = modality_transform(key, self.image_size, **self.preset)
        return self._pipelines[key]

    def __call__(self, item: Mapping) -> dict | None:
        d = dict(item)
        d["path"] = os.fspath(d["image"])
        try:
            with reraise_read_errors():
                return self.pipeline(d.get("modality"))(d)
        except ImageReadError as e:
            if self.on_error == "raise":
                raise
            warnings.warn(f"skipped unreadable image: {e}", stacklevel=2)
            return None


def read_images(paths: Sequence[str], modality: str | None, image_size: int) -> torch.Tensor:
    """``[N, 3, S, S]`` images of one task, read with one reader (built once, not per file); ``[0, 3, S, S]`` for
    no paths (a model trained on the task's normals scores without references)."""
    read = ReadImaged(image_size, modality)
    images = [read({"image": p})["image"] for p in paths]
    return torch.stack(images) if images else torch.empty(0, 3, image_size, image_size)


class ImageDataset(torch.utils.data.Dataset):
    """Items of a datalist with decoded images, cached once (memory, or ``cache_dir`` on disk).

    With ``on_error="skip"`` unreadable files are left out; ``skipped`` lists their paths for the report and
    ``items`` the datalist entries that were kept (without decoding anything again).
    """

    def __init__(
        self,
        items: Sequence[Mapping],
        image_size: int = 128,
        modality: str | None = None,
        on_error: str = "raise",
        cache_dir: str | None = None,
        num_workers: int | None = None,
        progress: bool = True,
        **preset,
    ):
        self.image_size, self.modality, self.preset = image_size, modality, preset
        read = ReadImaged(image_size, modality, on_error, **preset)
        items = [dict(it) for it in items]
        with reraise_read_errors():
            self.base = self._cached(items, read, cache_dir, num_workers, progress)
        loaded = [self.base[i] is not None for i in range(len(items))]
        self.valid = [i for i, ok in enumerate(loaded) if ok]
        self.items = [items[i] for i in self.valid]
        self.skipped = [str(items[i]["image"]) for i, ok in enumerate(loaded) if not ok]

    @staticmethod
    def _cached(items: list[dict], read: ReadImaged, cache_dir: str | None, num_workers: int | None, progress: bool):
        if cache_dir:
            return PersistentDataset(items, transform=Compose([read]), cache_dir=cache_dir)
        return CacheDataset(
            items, transform=Compose([read]), num_workers=num_workers, progress=progress, copy_cache=False
        )

    def __len__(self) -> int:
        return len(self.valid)

    def __getitem__(self, index: int) -> dict:
        return self.base[self.valid[index]]
