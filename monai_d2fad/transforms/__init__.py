"""MONAI transforms that turn PNG/JPEG, DICOM, NIfTI and ITK files into clean RGB tensors."""

from monai_d2fad.transforms.io import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    LoadMedicalImaged,
    ScaleToUnitd,
    reraise_read_errors,
)
from monai_d2fad.transforms.postprocessing import AnomalyScored, RestoreMapd
from monai_d2fad.transforms.presets import (
    MODALITIES,
    AdaptiveResized,
    HEStainNormalized,
    modality_transform,
    normalize_modality,
    restore_map,
    training_augmentation,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "MODALITIES",
    "AdaptiveResized",
    "AnomalyScored",
    "HEStainNormalized",
    "ImageReadError",
    "LoadMedicalImaged",
    "RestoreMapd",
    "ScaleToUnitd",
    "modality_transform",
    "normalize_modality",
    "reraise_read_errors",
    "restore_map",
    "training_augmentation",
]
