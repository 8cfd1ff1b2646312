"""Read PNG/JPEG, DICOM, NIfTI and ITK files through MONAI's ``LoadImage`` into float RGB tensors in [0, 1].

All formats come out as ``[3, rows, cols]`` in display orientation (row 0 at the top, as a viewer shows the file):
MONAI's readers give ``[C, x, y]`` for every format, so one transpose serves them all.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from monai.config import KeysCollection
from monai.data import ITKReader, NibabelReader, PILReader, PydicomReader
from monai.transforms import LoadImage, MapTransform, ScaleIntensityRange, ScaleIntensityRangePercentiles
from monai.utils import look_up_option
from PIL import Image

__all__ = ["IMAGE_EXTENSIONS", "ImageReadError", "LoadMedicalImaged", "ScaleToUnitd", "reraise_read_errors"]

PIL_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
NIFTI_EXTENSIONS = (".nii", ".nii.gz")
ITK_EXTENSIONS = (".mha", ".mhd", ".nrrd", ".nhdr")
DICOM_EXTENSIONS = (".dcm", ".dicom")
IMAGE_EXTENSIONS = PIL_EXTENSIONS + NIFTI_EXTENSIONS + ITK_EXTENSIONS + DICOM_EXTENSIONS
# PIL modes that are not plain gray/RGB become gray/RGB; palette indices are not intensities.
PIL_CONVERT = {
    "P": "RGB",
    "PA": "RGB",
    "RGBA": "RGB",
    "RGBX": "RGB",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "LA": "L",
    "1": "L",
}
INTENSITY_MODES = ("auto", "percentile", "window")
DICOM_TAGS = {"photometric": "00280004", "bits_stored": "00280101", "center": "00281050", "width": "00281051"}


class ImageReadError(ValueError):
    """A file that cannot be read as an image; the message starts with its path."""


@contextmanager
def reraise_read_errors() -> Iterator[None]:
    """Surface the ``ImageReadError`` that MONAI's ``Compose`` wraps in ``RuntimeError("applying transform ...")``."""
    try:
        yield
    except RuntimeError as e:
        cause: BaseException | None = e
        while cause is not None and not isinstance(cause, ImageReadError):
            cause = cause.__cause__
        if cause is None:
            raise
        raise cause from None


def _pil_convert(image: Image.Image) -> Image.Image:
    return image.convert(PIL_CONVERT[image.mode]) if image.mode in PIL_CONVERT else image


def _extension(path: str) -> str:
    lower = path.lower()
    return ".nii.gz" if lower.endswith(".nii.gz") else os.path.splitext(lower)[1]


@functools.cache
def _loader(ext: str) -> LoadImage:
    """One ``LoadImage`` per file type, built once: building one sets up every MONAI reader again."""
    if ext in PIL_EXTENSIONS:
        reader = PILReader(converter=_pil_convert)
    elif ext in NIFTI_EXTENSIONS:
        reader = NibabelReader()
    elif ext in ITK_EXTENSIONS:
        reader = ITKReader()
    else:
        reader = PydicomReader(prune_metadata=False)  # .dcm, extension-less PACS exports
    return LoadImage(reader=reader, image_only=True, dtype=None, ensure_channel_first=True)


def _dicom_value(meta: Mapping, name: str):
    value = meta.get(DICOM_TAGS[name], {}).get("Value")
    return None if not value else value[0]


def _integer_max(path: str) -> float | None:
    """Full-scale value of an 8/16-bit PNG/JPEG, from its mode (MONAI returns 16-bit PNGs as int32)."""
    if _extension(path) not in PIL_EXTENSIONS:
        return None
    with Image.open(path) as im:
        mode = im.mode
    if mode.startswith("I;16"):
        return 65535.0
    if mode in ("I", "F"):
        return None  # 32-bit: no fixed full scale, scale by range
    return 255.0


def _read(path: str) -> torch.Tensor:
    try:
        img = _loader(_extension(path))(path)
    except Exception as e:  # readers raise many types; the user needs the file and the reason
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ImageReadError(f"{path}: cannot read image ({type(e).__name__}: {reason[:300]})") from e
    if img.numel() == 0:
        raise ImageReadError(f"{path}: image is empty")
    return img


@functools.lru_cache(maxsize=1)
def _read_volume(path: str, mtime_ns: int, size: int) -> torch.Tensor:
    """``_read`` for volumes, keyed by modification time and size so that a changed file is read again."""
    return _read(path)


class LoadMedicalImaged(MapTransform):
    """Read ``d[key]`` (a path) into a float32 ``MetaTensor [C, rows, cols]`` of raw intensities.

    DICOM rescale slope/intercept are applied (MONAI's ``PydicomReader``); the facts needed to map intensities to
    [0, 1] (8/16-bit full scale, DICOM window and MONOCHROME1) are stored in the tensor's ``meta``.
    A 3D volume becomes one slice: ``slice_index`` along ``slice_axis`` (default: the middle of the last axis);
    an item's own ``"slice"`` entry, if present, overrides it (see ``data.expand_slices``).

    Raises:
        ImageReadError: naming the file and the reason, for a missing, corrupt or non-image file, or one whose
            (selected slice's) pixels hold NaN or infinite values.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        slice_axis: int = -1,
        slice_index: int | None = None,
        allow_missing_keys: bool = False,
    ):
        super().__init__(keys, allow_missing_keys)
        self.slice_axis, self.slice_index = slice_axis, slice_index

    def raw(self, path: str) -> torch.Tensor:
        """The file as MONAI reads it: ``[C, x, y]`` or ``[C, x, y, z]``, native dtype, ``meta`` with the tags.

        The last NIfTI/ITK volume read is kept (per process), so reading its slices one after another decodes it
        once; callers must not change the returned tensor in place.
        """
        path = os.fspath(path)
        if not os.path.exists(path):
            raise ImageReadError(f"{path}: file does not exist")
        if _extension(path) in NIFTI_EXTENSIONS + ITK_EXTENSIONS:
            stat = os.stat(path)
            return _read_volume(path, stat.st_mtime_ns, stat.st_size)
        return _read(path)

    def read(self, path: str, slice_index: int | None = None) -> torch.Tensor:
        path = os.fspath(path)
        img = self.raw(path)
        meta = img.meta
        integer_max = None if torch.is_floating_point(img) else _integer_max(path)
        img = self._to_2d(img, path, slice_index)
        _check_finite(img, path)
        out = img.float().transpose(1, 2).contiguous()  # [C, x, y] -> [C, rows, cols]
        out.meta["d2fad_max"] = integer_max
        out.meta["d2fad_window"] = None
        out.meta["d2fad_invert"] = False
        if DICOM_TAGS["photometric"] in meta:
            self._dicom_facts(out, meta, path)
        return out

    def _to_2d(self, img: torch.Tensor, path: str, slice_index: int | None) -> torch.Tensor:
        if img.dim() == 3:
            return img
        if img.dim() != 4:
            raise ImageReadError(f"{path}: expected a 2D image or 3D volume, got shape {tuple(img.shape[1:])}")
        axis = self.slice_axis % 3 + 1
        size = img.shape[axis]
        index = size // 2 if slice_index is None else slice_index
        if not -size <= index < size:
            raise ImageReadError(f"{path}: slice {index} out of range for {size} slices along axis {axis - 1}")
        return img.select(axis, index)

    @staticmethod
    def _dicom_facts(out: torch.Tensor, meta: Mapping, path: str) -> None:
        photometric = str(_dicom_value(meta, "photometric") or "")
        if photometric not in ("MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422"):
            raise ImageReadError(f"{path}: unsupported DICOM photometric interpretation {photometric!r}")
        out.meta["d2fad_invert"] = photometric == "MONOCHROME1"
        center, width = _dicom_value(meta, "center"), _dicom_value(meta, "width")
        if center is not None and width is not None and float(width) > 0:
            out.meta["d2fad_window"] = (float(center), float(width))

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.read(d[key], d.get("slice", self.slice_index))
        return d


class ScaleToUnitd(MapTransform):
    """Map raw intensities to [0, 1] and make 3 channels.

    Args:
        mode: ``"auto"``: DICOM window if the file has one, else the 8/16-bit full scale, else the image's range;
            ``"percentile"``: ``percentiles`` of the image to 0 and 1 (X-ray, MRI);
            ``"window"``: a fixed ``window`` ``(center, width)`` in the file's units (CT in HU).
        percentiles: lower and upper percentile for ``"percentile"``.
        window: ``(center, width)`` for ``"window"``.

    MONOCHROME1 DICOM images are inverted afterwards, so that high attenuation is bright in every output.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        mode: str = "auto",
        percentiles: Sequence[float] = (0.5, 99.5),
        window: Sequence[float] | None = None,
        allow_missing_keys: bool = False,
    ):
        super().__init__(keys, allow_missing_keys)
        mode = look_up_option(mode, INTENSITY_MODES)
        if mode == "window" and window is None:
            raise ValueError("mode='window' needs window=(center, width)")
        self.mode, self.percentiles, self.window = mode, tuple(percentiles), window

    def scale(self, img: torch.Tensor) -> torch.Tensor:
        meta = getattr(img, "meta", {})
        window = self.window if self.mode == "window" else meta.get("d2fad_window")
        if self.mode == "percentile":
            lo, hi = self.percentiles
            out = ScaleIntensityRangePercentiles(lo, hi, 0.0, 1.0, clip=True)(img)
        elif window is not None:
            center, width = window
            out = ScaleIntensityRange(center - width / 2, center + width / 2, 0.0, 1.0, clip=True)(img)
        elif meta.get("d2fad_max"):
            out = img / meta["d2fad_max"]
        else:
            lo, hi = img.min(), img.max()
            out = (img - lo) / (hi - lo) if hi > lo else torch.zeros_like(img)
        out = out.clamp(0, 1)
        if meta.get("d2fad_invert"):
            out = 1 - out
        return _rgb(out)

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.scale(d[key])
        return d


def _check_finite(img: torch.Tensor, path: str) -> None:
    """NaN or infinite pixels would score as NaN, which no threshold calls anomalous: refuse the file instead."""
    if torch.is_floating_point(img) and not bool(torch.isfinite(img).all()):
        bad = int((~torch.isfinite(img)).sum())
        raise ImageReadError(f"{path}: {bad} of {img.numel()} pixel values are NaN or infinite")


def _rgb(img: torch.Tensor) -> torch.Tensor:
    channels = img.shape[0]
    if channels == 1:
        return img.repeat(3, 1, 1)
    if channels in (2, 4):  # gray + alpha, RGB + alpha
        return img[:1].repeat(3, 1, 1) if channels == 2 else img[:3]
    if channels == 3:
        return img
    raise ValueError(f"cannot make RGB from {channels} channels")
