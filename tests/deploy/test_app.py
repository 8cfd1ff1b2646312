"""The MONAI Deploy application end to end (needs the ``[deploy]`` extra; skipped without the SDK)."""

import json
import os
import subprocess
import sys

import pydicom
import pytest

try:
    import monai.deploy.operators  # noqa: F401
except Exception as e:  # the SDK or one of its libraries is missing
    pytest.skip(f"MONAI Deploy App SDK not usable ({e}): pip install -e '.[deploy]'", allow_module_level=True)

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
    assert len(result["images"]) == 3 and result["decision"] in ("normal", "anomalous")
    assert len(os.listdir(out / "heatmaps")) == 3
    documents = [pydicom.dcmread(out / "dicom" / f) for f in sorted(os.listdir(out / "dicom"))]
    by_modality = {d.Modality: d for d in documents}
    assert set(by_modality) == {"SR", "OT"}
    source = pydicom.dcmread(study[1][0])
    sr = by_modality["SR"]
    assert sr.StudyInstanceUID == source.StudyInstanceUID  # filed in the scanned study
    text = sr.ContentSequence[0].TextValue
    assert f"Decision: {result['decision'].upper()}" in text
    assert by_modality["OT"].EncapsulatedDocument.startswith(b"%PDF")


def test_image_folder_gives_json_and_heatmaps(references, task_package_file, tmp_path):
    out = tmp_path / "out"
    run = _run("-i", references, "-m", task_package_file(), "-o", str(out))
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(os.listdir(out)) == ["heatmaps", "report.pdf", "result.json"]


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
