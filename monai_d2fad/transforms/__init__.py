"""MONAI transforms that turn PNG/JPEG, DICOM, NIfTI and ITK files into clean RGB tensors."""

from monai_d2fad.transforms.io import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    LoadMedicalImaged,
    ScaleToUnitd,
    reraise_read_errors,
)
from monai_d2fad.transforms.presets import MODALITIES, HEStainNormalized, modality_transform, normalize_modality

__all__ = [
    "IMAGE_EXTENSIONS", "ImageReadError", "reraise_read_errors", "LoadMedicalImaged", "ScaleToUnitd", "MODALITIES", "HEStainNormalized",
    "modality_transform", "normalize_modality",
]
