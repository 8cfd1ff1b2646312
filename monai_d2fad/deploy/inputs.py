"""What a MONAI Deploy run is given: the task package at the model path, and a DICOM study or an image folder.

Everything here is checked before the application's graph runs, so that bad input fails with a clear message and
leaves nothing written.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pydicom
import torch
from monai.transforms import Compose

from monai_d2fad.data.tasks import is_dicom_file, is_image_file
from monai_d2fad.deploy.report import IDENTIFIERS
from monai_d2fad.task_package import RegisteredTask, is_task_package, load_task_package
from monai_d2fad.transforms.presets import modality_transform, normalize_modality

__all__ = [
    "DICOM_MODALITIES",
    "check_dicom_study",
    "dicom_identifiers",
    "input_kind",
    "instance_fields",
    "load_model_path",
    "needs_inversion",
    "selection_rules",
    "slice_preset",
    "volume_slices",
]

# DICOM Modality values (0008,0060) whose series each preset scores; SR, PDF (DOC), KO, PR, SEG never match
DICOM_MODALITIES: dict[str, tuple[str, ...]] = {
    "xray": ("CR", "DX", "DR", "RG"),
    "mri": ("MR",),
    "ct": ("CT",),
    "fundus": ("OP", "XC"),
    "histopathology": ("SM", "XC", "OT"),
    "generic": ("CR", "DX", "DR", "RG", "MR", "CT", "OP", "XC", "SM", "OT", "US", "MG", "NM", "PT"),
}


def load_model_path(path: str, device: str | torch.device = "cpu") -> RegisteredTask:
    """The task package at ``path``: a package file, or a folder (MONAI Deploy's model folder) holding exactly one."""
    if os.path.isdir(path):
        found = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith((".pt", ".pth")))
        packages = [f for f in found if is_task_package(f)]
        if len(packages) != 1:
            raise ValueError(
                f"model folder {path} must hold exactly one task package (.pt made by python -m "
                f"monai_d2fad.task_package); found {len(packages)} among {[os.path.basename(f) for f in found]}"
            )
        path = packages[0]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model path {path} does not exist")
    if not is_task_package(path):
        raise ValueError(
            f"{path} is not a task package: register the normal references first with "
            "python -m monai_d2fad.task_package --checkpoint MODEL --support NORMALS --output TASK.pt"
        )
    return load_task_package(path, device=device)


def _files(folder: str) -> list[str]:
    return sorted(os.path.join(root, f) for root, _, files in os.walk(folder) for f in files if not f.startswith("."))


def input_kind(folder: str) -> str:
    """``"dicom"`` for a folder of DICOM files (a study), ``"files"`` for PNG/JPEG/NIfTI/mha images."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"input {folder} is not a folder")
    files = _files(folder)
    dicom = [f for f in files if f.lower().endswith(".dcm") or is_dicom_file(f)]
    images = [f for f in files if is_image_file(f) and not f.lower().endswith(".dcm")]
    if dicom and images:
        raise ValueError(
            f"input {folder} mixes DICOM files ({len(dicom)}) and other images ({len(images)}): give one kind"
        )
    if not dicom and not images:
        raise ValueError(f"input {folder} holds no DICOM file and no image (PNG, JPEG, NIfTI, mha/nrrd)")
    return "dicom" if dicom else "files"


def check_dicom_study(folder: str, modality: str | None) -> dict[str, int]:
    """The series of the study that the task's modality selects, ``{SeriesInstanceUID: files}``.

    Raises a ``ValueError`` naming the file for a corrupt DICOM file, and one listing what the study holds when
    no series has a Modality of the preset (e.g. a study of SR or PDF documents only).
    """
    accepted = DICOM_MODALITIES[normalize_modality(modality)]
    found, selected = Counter(), Counter()
    for path in _files(folder):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as e:  # pydicom raises several types; the user needs the file and the reason
            raise ValueError(f"{path}: not a readable DICOM file ({type(e).__name__}: {e})") from e
        kind = str(ds.get("Modality", "?"))
        found[kind] += 1
        if kind in accepted:
            selected[str(ds.get("SeriesInstanceUID", ""))] += 1
    if not selected:
        held = ", ".join(f"{k} ({n} files)" for k, n in sorted(found.items())) or "nothing"
        raise ValueError(
            f"no image series for modality {normalize_modality(modality)!r} (DICOM Modality {'/'.join(accepted)}) "
            f"in {folder}; it holds: {held}"
        )
    return dict(selected)


def selection_rules(modality: str | None) -> str:
    """Rules for MONAI Deploy's ``DICOMSeriesSelectorOperator``: the series whose Modality suits the task."""
    accepted = DICOM_MODALITIES[normalize_modality(modality)]
    pattern = "^(" + "|".join(accepted) + ")$"
    return json.dumps({"selections": [{"name": "d2fad", "conditions": {"Modality": pattern}}]})


def slice_preset(modality: str | None, image_size: int) -> Compose:
    """The task's preset for slices already in memory, keeping each slice's source image for source-size heatmaps."""
    return modality_transform(modality, image_size, read=False, keep_source=True)


def volume_slices(volume: np.ndarray, preset: Compose, invert: bool = False) -> Iterator[dict]:
    """Model inputs from a series volume ``[D, H, W]`` (or ``[D, H, W, 3]`` colour, or one ``[H, W]`` image) of raw
    intensities, as MONAI Deploy's ``DICOMSeriesToVolumeOperator`` gives it: one ``preset`` output (``image``
    ``[3, S, S]`` and ``image_source``) per slice, made when asked for.

    Each slice goes through the task's preset (``slice_preset``) like a file would; ``invert`` flips MONOCHROME1
    slices so that high attenuation is bright, as the file reader does.
    """
    array = np.asarray(volume, dtype=np.float32)
    if array.ndim == 2:
        array = array[None]
    channels = array.shape[-1] if array.ndim == 4 else 1
    slices = np.moveaxis(array, -1, 1) if array.ndim == 4 else array[:, None]
    if array.ndim not in (3, 4) or channels not in (1, 3, 4):
        raise ValueError(f"expected a [D, H, W] or [D, H, W, 3] volume, got shape {volume.shape}")
    for s in slices[:, :3]:
        image = torch.from_numpy(s.copy())
        if invert:
            image = image.max() + image.min() - image
        yield preset({"image": image})


def needs_inversion(dataset: pydicom.Dataset) -> bool:
    """Whether a series volume from MONAI Deploy's ``DICOMSeriesToVolumeOperator`` must still be inverted so that
    high attenuation is bright: MONOCHROME1, unless its Presentation LUT Shape is ``INVERSE`` (as the DX and CR
    image definitions require for MONOCHROME1), which the SDK already applied (``apply_presentation_lut``)."""
    monochrome1 = str(dataset.get("PhotometricInterpretation", "")) == "MONOCHROME1"
    return monochrome1 and str(dataset.get("PresentationLUTShape", "")).upper() != "INVERSE"


def dicom_identifiers(dataset: pydicom.Dataset) -> dict[str, str]:
    """The study and series attributes a report keeps (``report.IDENTIFIERS``) that ``dataset`` holds, as text."""
    return {key: str(dataset.get(key)) for key in IDENTIFIERS if dataset.get(key) not in (None, "")}


def instance_fields(dataset: pydicom.Dataset, root: str) -> dict:
    """What the report records of one scored DICOM instance: its name, file (relative to the study folder), UIDs
    and heatmap file, named after the instance's file."""
    path = getattr(dataset, "filename", None)
    relative = os.path.relpath(path, root) if isinstance(path, str) else f"{dataset.SOPInstanceUID}.dcm"
    number = dataset.get("InstanceNumber")
    return {
        "name": f"image {number}" if number is not None else os.path.basename(relative),
        "source": relative,
        "heatmap": os.path.join("heatmaps", f"{relative}.png"),
        "sop_instance_uid": str(dataset.SOPInstanceUID),
        "sop_class_uid": str(dataset.SOPClassUID),
    }
