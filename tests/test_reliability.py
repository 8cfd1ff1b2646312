"""Every kind of bad input against every reader and command: refused or reported per file, naming the file and the
problem, never scored (a NaN score would be called normal) and never a traceback from deep inside a library."""

import csv
import gzip
import os
import subprocess
import sys

import numpy as np
import pytest
from monai.bundle import ConfigWorkflow
from PIL import Image

from monai_d2fad.bundle_runs import BUNDLE_CONFIGS
from monai_d2fad.data import load_image, make_synthetic_tasks
from monai_d2fad.predict import main as predict
from monai_d2fad.protocol.__main__ import main as protocol
from monai_d2fad.task_package import main as register
from monai_d2fad.transforms.io import ImageReadError

CONFIGS = BUNDLE_CONFIGS


def _nifti_bytes(array):
    nib = pytest.importorskip("nibabel")
    return gzip.compress(nib.Nifti1Image(array, np.eye(4)).to_bytes())


def _nan_tiff(path):
    array = np.random.default_rng(0).random((40, 40)).astype(np.float32)
    array[3, 4] = np.nan
    Image.fromarray(array, mode="F").save(path)


def _inf_nifti(path):
    array = np.random.default_rng(0).random((30, 30)).astype(np.float32)
    array[0, 0] = np.inf
    path.write_bytes(_nifti_bytes(array))


def _truncated_nifti(path):
    whole = _nifti_bytes(np.random.default_rng(0).random((30, 30, 4)).astype(np.float32))
    path.write_bytes(whole[: len(whole) // 2])


def _palette_png_text(path):
    path.write_text("this is a text file, not a PNG")


# (name, file name, writer, words the error must contain)
BAD_INPUTS = [
    ("nan_pixels", "scan.tif", _nan_tiff, "NaN or infinite"),
    ("inf_pixels", "scan.nii.gz", _inf_nifti, "NaN or infinite"),
    ("corrupt_png", "scan.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n garbage"), "cannot read"),
    ("text_named_png", "scan.png", _palette_png_text, "cannot read"),
    ("empty_nifti", "scan.nii.gz", lambda p: p.write_bytes(b""), "scan.nii.gz"),
    ("truncated_nifti", "scan.nii.gz", _truncated_nifti, "cannot read"),
]
IDS = [case[0] for case in BAD_INPUTS]


def _good(folder, n, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"good_{i}.png")
    return folder


def _bad(folder, case):
    _, name, write, _ = case
    folder.mkdir(parents=True, exist_ok=True)
    write(folder / name)
    return str(folder / name)


@pytest.mark.parametrize("case", BAD_INPUTS, ids=IDS)
def test_reader(tmp_path, case):
    path = _bad(tmp_path, case)
    with pytest.raises(ImageReadError, match=case[3]) as err:
        load_image(path, image_size=32)
    assert str(err.value).startswith(path)


@pytest.mark.parametrize("case", BAD_INPUTS, ids=IDS)
def test_predict_skips_and_reports_the_file(tmp_path, case, checkpoint_file, references):
    inputs = _good(tmp_path / "inputs", 1)
    path = _bad(inputs, case)
    out = tmp_path / "out"
    args = ["--checkpoint", checkpoint_file, "--support", references, "--input", str(inputs), "--output", str(out)]
    summary = predict([*args, "--image_size", "64"])
    assert summary["scored"] == 1 and summary["skipped"] == 1
    assert summary["skipped_files"][0]["path"] == path and case[3] in summary["skipped_files"][0]["reason"]
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert [os.path.basename(r["path"]) for r in rows] == ["good_0.png"]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=IDS)
def test_predict_with_only_bad_inputs_fails(tmp_path, case, checkpoint_file, references):
    inputs = tmp_path / "inputs"
    _bad(inputs, case)
    args = ["--checkpoint", checkpoint_file, "--support", references, "--input", str(inputs)]
    with pytest.raises(SystemExit, match="none of the 1 inputs could be scored"):
        predict([*args, "--output", str(tmp_path / "out"), "--image_size", "64"])


@pytest.mark.parametrize("case", BAD_INPUTS, ids=IDS)
def test_register_refuses_a_bad_reference(tmp_path, case, checkpoint_file):
    folder = _good(tmp_path / "refs", 2)
    path = _bad(folder, case)
    with pytest.raises((SystemExit, ImageReadError), match=case[3]) as err:
        register(["--checkpoint", checkpoint_file, "--support", str(folder), "--output", str(tmp_path / "t.pt")])
    assert path in str(err.value) and not (tmp_path / "t.pt").exists()


@pytest.mark.parametrize("case", BAD_INPUTS, ids=IDS)
def test_bundle_inference_skips_the_file(tmp_path, case, checkpoint_file, references):
    inputs = _good(tmp_path / "inputs", 2)
    _bad(inputs, case)
    wf = ConfigWorkflow(
        config_file=os.path.join(CONFIGS, "inference.json"),
        workflow_type="infer",
        output_dir=str(tmp_path / "out"),
        ckpt_path=checkpoint_file,
        support=references,
        dataset_dir=str(inputs),
        image_size=64,
        batch_size=2,
    )
    with pytest.warns(UserWarning, match=case[3]):
        wf.initialize()
        wf.run()
    wf.finalize()
    rows = list(csv.DictReader(open(tmp_path / "out" / "scores.csv")))
    assert sorted(os.path.basename(r["path"]) for r in rows) == ["good_0.png", "good_1.png"]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=IDS)
def test_protocol_names_a_bad_test_image(tmp_path, case):
    data = tmp_path / "data"
    make_synthetic_tasks(str(data), names=["synthetic_cells", "synthetic_rings"], n_train=4, n_test=2, size=32)
    path = _bad(data / "synthetic_cells" / "test" / "good", case)
    args = ["--data_dir", str(data), "--output", str(tmp_path / "run"), "--methods", "image_nn", "--shots", "2"]
    with pytest.raises(SystemExit, match=case[3]) as err:
        protocol([*args, "--seeds", "1", "--teacher", "resnet18", "--teacher_weights", "none", "--image_size", "32"])
    assert path in str(err.value)


@pytest.mark.parametrize("case", BAD_INPUTS, ids=IDS)
def test_deploy_app_stops_naming_the_file(tmp_path, case, task_package_file):
    pytest.importorskip(
        "monai.deploy.operators", reason="MONAI Deploy App SDK not installed: pip install -e '.[deploy]'"
    )
    inputs = _good(tmp_path / "inputs", 1)
    path = _bad(inputs, case)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "monai_d2fad.deploy", "-i", str(inputs), "-m", task_package_file(), "-o", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and path in run.stderr and case[3] in run.stderr, run.stderr[-2000:]
    assert not out.exists() or not os.listdir(out)  # a clinical result is all or nothing
