"""Modality presets: MONAI ``Compose`` pipelines from a file path to a ``[3, S, S]`` float tensor in [0, 1]."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.apps.pathology.transforms import NormalizeHEStains
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import (
    Compose,
    CopyItemsd,
    CropForegroundd,
    EnsureTyped,
    InvertibleTransform,
    MapTransform,
    RandAdjustContrastd,
    RandAffined,
    Resize,
    SpatialPadd,
)
from monai.utils import TraceKeys, look_up_option

from monai_d2fad.transforms.io import LoadMedicalImaged, ScaleToUnitd

__all__ = [
    "MODALITIES",
    "AdaptiveResized",
    "HEStainNormalized",
    "modality_transform",
    "normalize_modality",
    "restore_map",
    "training_augmentation",
]

MODALITIES = ("generic", "fundus", "histopathology", "xray", "mri", "ct")
# free-text modality names (meta.json, DICOM Modality) -> preset
ALIASES = {
    "x-ray": "xray",
    "x_ray": "xray",
    "cxr": "xray",
    "dx": "xray",
    "cr": "xray",
    "mr": "mri",
    "fundus photo": "fundus",
    "retina": "fundus",
    "h&e histology": "histopathology",
    "histology": "histopathology",
    "pathology": "histopathology",
    "he": "histopathology",
}


def normalize_modality(modality: str | None) -> str:
    """The preset name for ``modality`` (case-insensitive, common aliases), ``generic`` when None."""
    if modality is None:
        return "generic"
    key = str(modality).strip().lower()
    key = ALIASES.get(key, key)
    return look_up_option(key, MODALITIES)


class HEStainNormalized(MapTransform):
    """Macenko H&E stain normalisation with MONAI's ``NormalizeHEStains`` on [0, 1] ``[3, H, W]`` tensors.

    Tiles without enough tissue to estimate the stains are left unchanged, with a warning.
    """

    def __init__(self, keys: KeysCollection = "image", allow_missing_keys: bool = False, **kwargs):
        super().__init__(keys, allow_missing_keys)
        self.normalizer = NormalizeHEStains(**kwargs)

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            hwc = (img.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
            try:
                out = self.normalizer(hwc)
            except (ValueError, np.linalg.LinAlgError) as e:
                warnings.warn(f"stain normalisation skipped for one image: {e}", stacklevel=2)
                continue
            d[key] = img.new_tensor(out.astype(np.float32) / 255).permute(2, 0, 1)
        return d


class AdaptiveResized(MapTransform, InvertibleTransform):
    """Resize by area averaging when shrinking and bilinearly when enlarging.

    Area averaging is the anti-aliased downsampling; MONAI's Gaussian ``anti_aliasing`` pads with zeros and darkens
    the image borders. The inverse (for anomaly maps, see ``restore_map``) is always bilinear, so that a map brought
    back to a large source image is smooth rather than blocky.

    Args:
        size: output side; ``size_mode="all"`` gives ``size x size``, ``"longest"`` keeps the aspect ratio.
    """

    def __init__(self, keys: KeysCollection, size: int, size_mode: str = "all", allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        spatial = size if size_mode == "longest" else (size, size)
        self.size = size
        self.shrink = Resize(spatial, size_mode=size_mode, mode="area")
        self.enlarge = Resize(spatial, size_mode=size_mode, mode="bilinear", align_corners=False)

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = (self.shrink if max(d[key].shape[1:]) > self.size else self.enlarge)(d[key])
        return d

    def inverse(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            done = d[key].applied_operations[-1]
            resize = self.shrink if done[TraceKeys.ID] == id(self.shrink) else self.enlarge
            size = resize.pop_transform(d[key])[TraceKeys.ORIG_SIZE]
            d[key] = Resize(size, mode="bilinear", align_corners=False)(d[key].as_tensor())
            d[key] = MetaTensor(d[key], applied_operations=data[key].applied_operations)
        return d


def training_augmentation(image_size: int, keys: KeysCollection = "image") -> Compose:
    """Mild augmentation: small shifts and scaling, slight contrast; no rotations or flips (they break anatomy)."""
    shift = 0.04 * image_size
    return Compose(
        [
            RandAffined(
                keys, prob=0.5, translate_range=(shift, shift), scale_range=(0.05, 0.05), padding_mode="border"
            ),
            RandAdjustContrastd(keys, prob=0.3, gamma=(0.9, 1.1)),
        ]
    )


def _fov_mask(img: torch.Tensor) -> torch.Tensor:
    """Fundus field of view: pixels brighter than a small fraction of the image's maximum."""
    gray = img.mean(0, keepdim=True)
    return gray > 0.1 * gray.max()


def modality_transform(
    modality: str | None = None,
    image_size: int = 128,
    train: bool = False,
    keys: KeysCollection = "image",
    stain_normalize: bool = False,
    percentiles: Sequence[float] | None = None,
    ct_window: Sequence[float] = (40.0, 400.0),
    slice_axis: int = -1,
    slice_index: int | None = None,
    read: bool = True,
    keep_source: bool = False,
) -> Compose:
    """The preset pipeline for ``modality``: read, intensities to [0, 1], modality step, resize to ``image_size``.

    Args:
        modality: ``generic``, ``fundus`` (crop to the circular field of view), ``histopathology`` (optional
            H&E stain normalisation), ``xray`` (percentile scaling), ``mri`` (percentile scaling, slice selection),
            ``ct`` (window ``ct_window`` = (centre, width) in HU).
        train: add mild augmentation (small shifts, scaling and contrast; never rotations or flips, which can
            break anatomy). Evaluation (``train=False``) is deterministic.
        percentiles: override the percentile range of ``xray`` (0.5, 99.5) and ``mri`` (1, 99).
        read: False for images already in memory: ``{"image": [C, H, W]}`` arrays of raw intensities (e.g. the
            slices of a DICOM series loaded by MONAI Deploy), with no file to read.
        keep_source: also keep the [0, 1] image at its own size and orientation under ``"<key>_source"``, and
            return ``key`` as a ``MetaTensor`` that records the spatial steps, so that ``restore_map`` can bring
            anomaly maps back onto the source image (heatmaps for clinical outputs).
    """
    modality = normalize_modality(modality)
    if modality in ("xray", "mri"):
        default = (0.5, 99.5) if modality == "xray" else (1.0, 99.0)
        scale = ScaleToUnitd(keys, mode="percentile", percentiles=percentiles or default)
    elif modality == "ct":
        scale = ScaleToUnitd(keys, mode="window", window=ct_window)
    else:
        scale = ScaleToUnitd(keys, mode="auto")
    steps: list = [LoadMedicalImaged(keys, slice_axis=slice_axis, slice_index=slice_index)] if read else []
    if keep_source:
        steps.append(EnsureTyped(keys, data_type="tensor", track_meta=True))
    steps.append(scale)
    if keep_source:
        steps.append(CopyItemsd(keys, names=[f"{key}_source" for key in _key_list(keys)]))
    if modality == "fundus":
        steps += [
            CropForegroundd(keys, source_key=_first(keys), select_fn=_fov_mask, allow_smaller=True),
            AdaptiveResized(keys, image_size, size_mode="longest"),
            SpatialPadd(keys, spatial_size=(image_size, image_size)),
        ]
    else:
        steps.append(AdaptiveResized(keys, image_size))
    if modality == "histopathology" and stain_normalize:
        steps.append(HEStainNormalized(keys))
    if train:
        steps.append(training_augmentation(image_size, keys))
    steps.append(EnsureTyped(keys, data_type="tensor", dtype=torch.float32, track_meta=keep_source))
    return Compose(steps)


def restore_map(preset: Compose, image: MetaTensor, maps: torch.Tensor) -> torch.Tensor:
    """Anomaly maps ``[C, S, S]`` of ``image`` (the output of ``preset`` made with ``keep_source=True``) brought
    back onto the source image's grid, ``[C, H, W]``: the preset's crop, resize and pad undone (bilinear).
    """
    key = _first(next(t.keys for t in preset.transforms if isinstance(t, MapTransform)))
    on_image = MetaTensor(maps.float().cpu(), applied_operations=copy.deepcopy(image.applied_operations))
    return preset.inverse({key: on_image})[key].as_tensor()


def _key_list(keys: KeysCollection) -> list:
    return [keys] if isinstance(keys, str) else list(keys)


def _first(keys: KeysCollection) -> str:
    return _key_list(keys)[0]
