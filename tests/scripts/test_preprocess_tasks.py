"""``scripts/preprocess_tasks.py``: the copy keeps every file's place and reads back as its preset's output."""

import importlib.util
import json
import os

import pytest
import torch

from monai_d2fad.data import make_synthetic_tasks
from monai_d2fad.data.images import ReadImaged
from monai_d2fad.data.tasks import load_task

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "preprocess_tasks.py")


def _script():
    spec = importlib.util.spec_from_file_location("preprocess_tasks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_copy_reads_back_as_the_preset_output(tmp_path):
    source = str(tmp_path / "tasks")
    make_synthetic_tasks(source, names=["synthetic_cells"], n_train=3, n_val=2, n_test=2, size=80)
    task_dir = os.path.join(source, "synthetic_cells")
    meta = json.load(open(os.path.join(task_dir, "meta.json")))
    meta["modality"] = "xray"  # a preset that changes intensities: the copy must not apply it twice
    json.dump(meta, open(os.path.join(task_dir, "meta.json"), "w"))
    out = str(tmp_path / "copy")
    written = _script().preprocess_task(task_dir, out, 64)

    original, copy = load_task(task_dir), load_task(os.path.join(out, "synthetic_cells"))
    assert copy.modality == "generic" and written == sum(len(original.items(s)) for s in ("train", "val", "test"))
    for split in ("train", "val", "test"):
        assert [os.path.relpath(i["image"], out) for i in copy.items(split)] == [
            os.path.relpath(i["image"], source) for i in original.items(split)
        ]
    item = original.items("test")[0]
    expected = ReadImaged(64, "xray")({"image": item["image"]})["image"]
    back = ReadImaged(64, "generic")({"image": os.path.join(out, os.path.relpath(item["image"], source))})["image"]
    assert back.shape == expected.shape
    assert torch.mean(torch.abs(back - expected)) < 8 / 255  # 8-bit rounding and JPEG/PNG coding only


def test_an_existing_output_is_never_overwritten(tmp_path, monkeypatch):
    (tmp_path / "copy").mkdir()
    monkeypatch.setattr(
        "sys.argv", ["preprocess_tasks.py", "--data_dir", str(tmp_path), "--output", str(tmp_path / "copy")]
    )
    with pytest.raises(FileExistsError, match="exists"):
        _script().main()
