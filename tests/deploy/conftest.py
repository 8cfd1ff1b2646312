"""A tiny DICOM study and PNG folder for the deploy tests."""

import numpy as np
import pytest

from tests.files import write_dicom, write_dicom_series, write_png


@pytest.fixture
def study(tmp_path):
    """An MR series of 3 slices (40 x 50) and, beside it in the same study, a Basic Text SR document."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "study"
    paths = write_dicom_series(folder, [rng.integers(0, 4000, (40, 50)) for _ in range(3)], modality="MR")
    write_dicom(folder / "report.dcm", np.zeros((2, 2)), modality="SR")
    return str(folder), paths


@pytest.fixture
def png_folder(tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(2):
        write_png(folder / f"image_{i}.png", rng.integers(0, 256, (48, 48), dtype=np.uint8))
    return str(folder)
