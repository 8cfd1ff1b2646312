import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from monai_d2fad.data import load_image
from monai_d2fad.predict import main
from monai_d2fad.task_package import load_task_package
from tests.files import RAMP, write_dicom


@pytest.fixture
def inputs(tmp_path):
    """Mixed formats: PNG, JPEG, extension-less DICOM, a 3-slice NIfTI volume, mha, and a corrupt file."""
    nib = pytest.importorskip("nibabel")
    itk = pytest.importorskip("itk")
    root = tmp_path / "inputs"
    (root / "series").mkdir(parents=True)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)).save(root / "a.png")
    Image.fromarray(rng.integers(0, 256, (50, 40), dtype=np.uint8)).save(root / "b.jpg")
    write_dicom(root / "series" / "IM0001", (RAMP * 4000).astype(np.uint16))
    nib.save(nib.Nifti1Image(rng.random((30, 30, 3)).astype(np.float32), np.eye(4)), str(root / "vol.nii.gz"))
    itk.imwrite(itk.image_from_array(RAMP.astype(np.float32)), str(root / "c.mha"))
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    return str(root)


def _args(checkpoint, references, inputs, out, *extra):
    """predict's options for a checkpoint with references, at 64 px."""
    return [
        "--checkpoint",
        checkpoint,
        "--support",
        references,
        "--input",
        inputs,
        "--output",
        out,
        "--image_size",
        "64",
        *extra,
    ]


def _rows(output):
    return list(csv.DictReader(open(os.path.join(output, "predictions.csv"))))


def test_predict_mixed_folder(tmp_path, checkpoint_file, references, inputs):
    out = str(tmp_path / "out")
    summary = main(_args(checkpoint_file, references, inputs, out, "--batch_size", "2"))
    rows = _rows(out)
    assert summary["inputs"] == 8 and summary["scored"] == 7 == len(rows) and summary["skipped"] == 1
    assert summary["skipped_files"][0]["path"].endswith("broken.png")
    assert sorted(r["slice"] for r in rows if r["path"].endswith("vol.nii.gz")) == ["0", "1", "2"]
    assert any(r["path"].endswith("IM0001") for r in rows)
    threshold = summary["threshold"]["value"]
    assert all(int(r["anomalous"]) == (float(r["score"]) >= threshold) for r in rows)
    assert all(os.path.isfile(os.path.join(out, r["heatmap"])) for r in rows)
    assert json.load(open(os.path.join(out, "summary.json")))["scored"] == 7


def test_outputs_are_not_overwritten(tmp_path, checkpoint_file, references, inputs):
    out = str(tmp_path / "out")
    args = _args(checkpoint_file, references, inputs, out, "--no_heatmaps")
    main(args)
    before = open(os.path.join(out, "predictions.csv")).read()
    with pytest.raises(SystemExit, match="--overwrite"):
        main(args)
    assert open(os.path.join(out, "predictions.csv")).read() == before
    main([*args, "--overwrite"])


def test_package_scores_equal_the_detector(tmp_path, references, task_package_file):
    package_file = task_package_file("--threshold", "0.5")
    out = str(tmp_path / "out")
    summary = main(["--checkpoint", package_file, "--input", references, "--output", out])
    assert summary["threshold"] == {"method": "given", "value": 0.5}
    package = load_task_package(package_file)
    rows = _rows(out)
    images = torch.stack([load_image(r["path"], image_size=64) for r in rows])
    expected = package.detector.score(images)[0]
    got = torch.tensor([float(r["score"]) for r in rows])
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)  # channels-last path equals the plain detector
    again = main(
        [
            "--checkpoint",
            package_file,
            "--input",
            references,
            "--output",
            out,
            "--threshold",
            "0.9",
            "--overwrite",
            "--no_heatmaps",
        ]
    )
    assert again["threshold"] == {"method": "given", "value": 0.9}


def test_checkpoint_without_support_is_explained(tmp_path, checkpoint_file, references):
    with pytest.raises(SystemExit, match="--support"):  # a checkpoint alone holds no references
        main(["--checkpoint", checkpoint_file, "--input", references, "--output", str(tmp_path / "out")])


def test_heatmap_names_are_unique_per_input(tmp_path, checkpoint_file, references):
    root = tmp_path / "inputs"
    (root / "sub").mkdir(parents=True)
    rng = np.random.default_rng(2)
    for name in ("scan.jpeg", "scan.png", "sub/a.jpeg", "sub__a.jpeg"):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / name)
    out = str(tmp_path / "out")
    main(_args(checkpoint_file, references, str(root), out))
    names = [r["heatmap"] for r in _rows(out)]
    assert len(set(names)) == 4 and all(os.path.isfile(os.path.join(out, n)) for n in names)
    assert os.path.join("heatmaps", "sub", "a.jpeg.png") in names


def test_overwrite_replaces_every_output_of_the_previous_run(tmp_path, checkpoint_file, references, inputs):
    out = str(tmp_path / "out")
    main(_args(checkpoint_file, references, inputs, out))
    main(_args(checkpoint_file, references, references, out, "--overwrite"))
    heatmaps = {os.path.join(d, f) for d, _, files in os.walk(os.path.join(out, "heatmaps")) for f in files}
    assert heatmaps == {os.path.join(out, r["heatmap"]) for r in _rows(out)}  # none left from the first run
    assert sorted(os.listdir(out)) == ["heatmaps", "predictions.csv", "summary.json"]  # no staging, no lock


def test_a_second_run_into_the_same_output_is_refused(tmp_path, checkpoint_file, references):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from monai_d2fad.outputs import OutputLock; import time; OutputLock({str(out)!r})"
         ".acquire(); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SystemExit, match=f"in use by process {holder.pid}"):
            main(_args(checkpoint_file, references, references, str(out)))
        assert os.listdir(out) == [".monai_d2fad.lock"]
    finally:
        holder.kill()
        holder.wait()
    with pytest.warns(UserWarning, match="stale lock"):  # the other run died: its lock no longer holds
        assert main(_args(checkpoint_file, references, references, str(out)))["scored"] == 3


def test_package_settings_cannot_be_silently_changed(tmp_path, references, task_package_file):
    package_file = task_package_file()
    for option, value in (("--image_size", "128"), ("--modality", "xray")):
        args = ["--checkpoint", package_file, "--input", references, "--output", str(tmp_path / option)]
        with pytest.raises(SystemExit, match=f"{option} {value} \\(the package's: "):
            main([*args, option, value])


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_threshold_that_is_not_finite_is_refused(tmp_path, checkpoint_file, references, value):
    with pytest.raises(SystemExit, match="not a finite number"):
        main(_args(checkpoint_file, references, references, str(tmp_path / "out"), "--threshold", value))
