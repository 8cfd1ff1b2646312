"""A tiny DICOM study for the deploy tests (a folder of PNGs is the root conftest's ``references``)."""

import numpy as np
import pytest

from tests.files import write_dicom, write_dicom_series


@pytest.fixture
def study(tmp_path):
    """An MR series of 3 slices (40 x 50) and, beside it in the same study, a Basic Text SR document."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "study"
    paths = write_dicom_series(folder, [rng.integers(0, 4000, (40, 50)) for _ in range(3)], modality="MR")
    write_dicom(folder / "report.dcm", np.zeros((2, 2)), modality="SR")
    return str(folder), paths
