"""The training benchmark runs both ways on the same episodes and reports both speeds (no timing is asserted)."""

import json

import pytest

from monai_d2fad.training_benchmark import main


def test_benchmark_reports_both_runs(tmp_path):
    out = tmp_path / "training.json"
    data = ["--data_dir", str(tmp_path / "tasks"), "--image_size", "64"]
    report = main([*data, "--steps", "2", "--max_per_task", "6", "--output", str(out)])
    assert [r["cached"] for r in report["results"]] == [False, True]
    assert all(r["episodes_per_s"] > 0 and r["training_images"] == 24 for r in report["results"])
    assert json.loads(out.read_text())["speedup"] == report["speedup"]


def test_reduced_precision_training_needs_cuda():
    with pytest.raises(ValueError, match="fp16 on cpu"):
        main(["--device", "cpu", "--precision", "fp16"])
