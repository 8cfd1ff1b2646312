"""Input and model checks of the deploy application (core package only, no SDK)."""

import json
import os

import numpy as np
import pytest
import torch

from monai_d2fad.deploy.inputs import (
    check_dicom_study,
    dicom_identifiers,
    input_kind,
    instance_fields,
    load_model_path,
    needs_inversion,
    selection_rules,
    slice_preset,
    volume_slices,
)
from tests.files import write_dicom


def test_model_path_is_a_package_or_a_folder_holding_one(tmp_path, task_package_file, checkpoint_file):
    package_path = task_package_file()
    assert load_model_path(package_path).image_size == 64
    assert load_model_path(os.path.dirname(package_path)).image_size == 64  # beside model.pt, a checkpoint
    with pytest.raises(ValueError, match=r"not a task package.*monai_d2fad.task_package"):
        load_model_path(checkpoint_file)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="exactly one task package"):
        load_model_path(str(empty))


def test_input_kind(study, references, tmp_path):
    assert input_kind(study[0]) == "dicom"
    assert input_kind(references) == "files"
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ValueError, match="no DICOM file and no image"):
        input_kind(str(tmp_path / "nothing"))
    write_dicom(os.path.join(references, "extra.dcm"), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="mixes DICOM"):
        input_kind(references)


def test_study_check_selects_the_image_series_and_ignores_documents(study):
    assert list(check_dicom_study(study[0], "mri").values()) == [3]
    assert list(check_dicom_study(study[0], None).values()) == [3]


def test_study_without_a_matching_series_lists_what_it_holds(study):
    with pytest.raises(ValueError, match=r"modality 'xray'.*MR \(3 files\), SR \(1 files\)"):
        check_dicom_study(study[0], "xray")


def test_corrupt_dicom_file_is_named(study):
    broken = os.path.join(study[0], "broken.dcm")
    with open(broken, "wb") as f:
        f.write(b"not a dicom file")
    with pytest.raises(ValueError, match=r"broken.dcm: not a readable DICOM file"):
        check_dicom_study(study[0], "mri")


def test_selection_rules_match_the_modality():
    rules = json.loads(selection_rules("xray"))
    assert rules["selections"][0]["conditions"] == {"Modality": "^(CR|DX|DR|RG)$"}


def test_volume_slices_become_model_inputs_with_their_source():
    volume = np.zeros((2, 40, 50), dtype=np.int16)
    volume[:, :, 25:] = 1000  # right half bright
    preset = slice_preset("generic", 64)
    slices = list(volume_slices(volume, preset))
    assert len(slices) == 2 and slices[0]["image"].shape == (3, 64, 64) and slices[0]["image"].dtype == torch.float32
    assert slices[0]["image"][0, 32, 60] > 0.9 and slices[0]["image"][0, 32, 4] < 0.1
    assert slices[0]["image_source"].shape == (3, 40, 50)  # the slice at its own size, in [0, 1]
    inverted = next(volume_slices(volume, preset, invert=True))["image"]  # MONOCHROME1
    assert inverted[0, 32, 60] < 0.1 and inverted[0, 32, 4] > 0.9
    colour = next(volume_slices(np.random.rand(1, 40, 50, 3) * 255, slice_preset("fundus", 64)))
    assert colour["image"].shape == (3, 64, 64)
    with pytest.raises(ValueError, match="volume"):
        next(volume_slices(np.zeros((2, 2, 2, 2, 2)), preset))


def test_instance_fields_name_the_file_and_its_uids(study):
    import pydicom

    dataset = pydicom.dcmread(study[1][1])
    fields = instance_fields(dataset, study[0])
    assert fields["source"] == "slice_001.dcm" and fields["heatmap"] == os.path.join("heatmaps", "slice_001.dcm.png")
    assert fields["name"] == "image 2" and fields["sop_instance_uid"] == dataset.SOPInstanceUID
    identifiers = dicom_identifiers(dataset)
    assert identifiers["PatientName"] == "Test^Patient" and identifiers["StudyInstanceUID"] == dataset.StudyInstanceUID


def test_needs_inversion_leaves_what_the_sdk_already_inverted():
    import pydicom

    def dataset(**tags):
        ds = pydicom.Dataset()
        for keyword, value in tags.items():
            setattr(ds, keyword, value)
        return ds

    assert not needs_inversion(dataset(PhotometricInterpretation="MONOCHROME2"))
    assert needs_inversion(dataset(PhotometricInterpretation="MONOCHROME1"))
    assert not needs_inversion(dataset(PhotometricInterpretation="MONOCHROME1", PresentationLUTShape="INVERSE"))
