"""The inference benchmark's grid: every option combination is timed and reported (no timing is asserted)."""

import json

import pytest

from monai_d2fad.benchmark import main


def test_in_process_grid_times_every_configuration_eager_and_compiled(tmp_path):
    out = tmp_path / "bench.json"
    argv = ["--teachers", "efficientnet_lite0", "--image_sizes", "64", "--shots", "2", "--batch_size", "2"]
    argv += ["--batches", "1", "--device", "cpu", "--in_process", "--compile_backends", "none", "eager"]
    report = main([*argv, "--output", str(out)])
    rows = report["results"]
    assert [(r["pattern"], r["compiled"]) for r in rows] == [
        ("cached", False),
        ("cached", "eager"),
        ("official", False),
        ("official", "eager"),
    ]
    assert all(r["queries_per_s"] > 0 and r["precision"] == "fp32" for r in rows)
    assert {r["speedup_vs_official"] > 0 for r in rows if r["pattern"] == "cached"} == {True}
    assert json.loads(out.read_text()) == report


def test_reduced_precision_needs_cuda():
    with pytest.raises(ValueError, match="bf16 on cpu: bf16 and fp16 autocast run on CUDA only"):
        main(["--device", "cpu", "--precisions", "fp32", "bf16", "--teachers", "efficientnet_lite0"])
