"""The MONAI Deploy application end to end (needs the ``[deploy]`` extra; skipped without the SDK)."""

import json
import os
import subprocess
import sys

import numpy as np
import pydicom
import pytest
from PIL import Image

try:
    import monai.deploy.operators  # noqa: F401
except Exception as e:  # the SDK or one of its libraries is missing
    pytest.skip(f"MONAI Deploy App SDK not usable ({e}): pip install -e '.[deploy]'", allow_module_level=True)

from tests.files import write_dicom_series

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(*args):
    cmd = [sys.executable, "-m", "monai_d2fad.deploy", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_dicom_study_gives_json_heatmaps_sr_and_pdf(study, task_package_file, tmp_path):
    out = tmp_path / "out"
    run = _run("-i", study[0], "-m", task_package_file(), "-o", str(out))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    with open(out / "result.json") as f:
        result = json.load(f)
    sources = [pydicom.dcmread(p) for p in study[1]]
    assert len(result["images"]) == 3 and result["decision"] in ("normal", "anomalous")
    assert result["study"]["StudyInstanceUID"] == sources[0].StudyInstanceUID
    assert [i["sop_instance_uid"] for i in result["images"]] == [s.SOPInstanceUID for s in sources]  # slice order
    assert sorted(os.listdir(out / "heatmaps")) == ["slice_000.dcm.png", "slice_001.dcm.png", "slice_002.dcm.png"]
    assert Image.open(out / "heatmaps" / "slice_000.dcm.png").size == (50, 40)  # the source's columns x rows
    documents = [pydicom.dcmread(out / "dicom" / f) for f in sorted(os.listdir(out / "dicom"))]
    by_modality = {d.Modality: d for d in documents}
    assert set(by_modality) == {"SR", "OT"}
    sr = by_modality["SR"]
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR, TID 1500 (see test_sr)
    assert sr.StudyInstanceUID == sources[0].StudyInstanceUID  # filed in the scanned study
    assert sr.PatientName == sources[0].PatientName
    assert by_modality["OT"].EncapsulatedDocument.startswith(b"%PDF")


def test_image_folder_gives_json_heatmaps_named_after_the_inputs(references, task_package_file, tmp_path):
    out = tmp_path / "out"
    run = _run("-i", references, "-m", task_package_file(), "-o", str(out))
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(os.listdir(out)) == ["colorbar.png", "heatmaps", "report.pdf", "result.json"]
    with open(out / "result.json") as f:
        result = json.load(f)
    names = sorted(os.listdir(references))
    assert sorted(i["source"] for i in result["images"]) == names  # relative: no local path
    assert sorted(os.listdir(out / "heatmaps")) == [f"{n}.png" for n in names]
    for name in names:
        assert Image.open(out / "heatmaps" / f"{name}.png").size == Image.open(os.path.join(references, name)).size


def test_study_without_matching_series_fails_with_nothing_written(study, task_package_file, tmp_path):
    for path in study[1]:
        os.remove(path)  # only the SR document is left
    out = tmp_path / "out"
    run = _run("-i", study[0], "-m", task_package_file(), "-o", str(out))
    assert run.returncode == 1
    assert "no image series" in run.stderr and "SR (1 files)" in run.stderr
    assert not out.exists() or not os.listdir(out)


def test_a_registered_dcam_task_runs_in_the_app(references, tmp_path):
    import torch

    from monai_d2fad.checkpoint import save_checkpoint
    from monai_d2fad.networks import DCAM
    from monai_d2fad.task_package import main as register

    teacher = tmp_path / "resnet18.pth"
    torch.save(DCAM("resnet18", teacher_weights=None).teacher.net.state_dict(), teacher)
    checkpoint = save_checkpoint(DCAM("resnet18", teacher_weights=str(teacher)), tmp_path / "dcam.pt")
    package = str(tmp_path / "dcam.task.pt")
    register(["--checkpoint", checkpoint, "--support", references, "--output", package, "--image_size", "64"])
    out = tmp_path / "out"
    run = _run("-i", references, "-m", package, "-o", str(out))
    assert run.returncode == 0, run.stderr[-2000:]
    with open(out / "result.json") as f:
        assert len(json.load(f)["images"]) == 3


@pytest.mark.parametrize("command", [["-m", "monai_d2fad.deploy"], ["-m", "monai_d2fad", "deploy"]])
def test_help_shows_the_app_options_not_holoscans(command):
    run = subprocess.run([sys.executable, *command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    for option in ("-i INPUT", "-m MODEL", "-o OUTPUT", "task package", "HOLOSCAN_INPUT_PATH"):
        assert option in run.stdout


def test_monochrome1_series_scores_like_the_same_picture_in_monochrome2(task_package_file, tmp_path):
    """MONOCHROME1 images with Presentation LUT Shape INVERSE (as DX and CR require) come out of the SDK's volume
    loader already inverted: the app must not invert them twice, and must still invert those without that shape."""
    rng = np.random.default_rng(1)
    picture = [rng.integers(0, 4000, (40, 50)) for _ in range(2)]
    negative = [4095 - p for p in picture]  # the same picture as MONOCHROME1 stores it (12 bits)
    package = task_package_file()
    scores = {}
    for name, slices, tags in [
        ("monochrome2", picture, {}),
        ("monochrome1_inverse", negative, {"photometric": "MONOCHROME1", "PresentationLUTShape": "INVERSE"}),
        ("monochrome1", negative, {"photometric": "MONOCHROME1"}),
    ]:
        write_dicom_series(tmp_path / name, slices, **tags)
        run = _run("-i", str(tmp_path / name), "-m", package, "-o", str(tmp_path / f"out_{name}"))
        assert run.returncode == 0, run.stderr[-2000:]
        with open(tmp_path / f"out_{name}" / "result.json") as f:
            scores[name] = [image["score"] for image in json.load(f)["images"]]
    assert scores["monochrome1_inverse"] == pytest.approx(scores["monochrome2"], rel=1e-3)
    assert scores["monochrome1"] == pytest.approx(scores["monochrome2"], rel=1e-3)
