"""Writers of tiny test images in every supported format (made in the test itself, never committed)."""

import os

import numpy as np
from PIL import Image

# stored values rise from left (dark) to right (bright); 40 rows, 50 columns
RAMP = np.tile(np.linspace(0, 1, 50), (40, 1))


def write_png(path, array):
    Image.fromarray(array).save(path)
    return str(path)


def write_dicom(path, array, photometric="MONOCHROME2", slope=None, intercept=None, window=None, modality="DX", **tags):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = modality, "TEST"
    ds.Rows, ds.Columns = array.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept or 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = array.astype(np.uint16).tobytes()
    for keyword, value in tags.items():  # e.g. StudyInstanceUID, SeriesInstanceUID, InstanceNumber
        setattr(ds, keyword, value)
    ds.save_as(str(path), enforce_file_format=True)
    return str(path)


def make_task(root, name, n_train=6, n_good=2, n_bad=2, good="good", bad="Ungood", size=24, seed=0):
    """A tiny task folder with distinct random PNGs."""
    rng = np.random.default_rng(seed)
    for split, kind, n in [("train", "good", n_train), ("test", good, n_good), ("test", bad, n_bad)]:
        d = os.path.join(root, name, split, kind)
        os.makedirs(d, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(os.path.join(d, f"{i}.png"))
    return os.path.join(root, name)


def write_dicom_series(folder, slices, modality="MR", **tags):
    """One series of ``slices`` ([H, W] arrays) in one study, with the tags MONAI Deploy's loaders sort by."""
    from pydicom.uid import generate_uid

    os.makedirs(folder, exist_ok=True)
    study, series = tags.pop("StudyInstanceUID", generate_uid()), generate_uid()
    paths = []
    for i, array in enumerate(slices):
        tags_i = dict(
            StudyInstanceUID=study, SeriesInstanceUID=series, SeriesNumber=1, InstanceNumber=i + 1,
            ImagePositionPatient=[0.0, 0.0, float(i)], ImageOrientationPatient=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            PixelSpacing=[1.0, 1.0], SliceThickness=1.0, StudyDate="20260101", StudyTime="120000",
            PatientName="Test^Patient", AccessionNumber="A1", StudyID="1", ReferringPhysicianName="", PatientSex="O",
            PatientBirthDate="19700101", SeriesDescription="test series", **tags,
        )  # fmt: skip
        paths.append(write_dicom(os.path.join(folder, f"slice_{i:03d}.dcm"), array, modality=modality, **tags_i))
    return paths
