import csv

import nibabel as nib
import pytest
import torch

from monai_d2fad.prediction_table import PredictionTable


@pytest.mark.parametrize("map_format", ["png", "nifti", "none"])
def test_rows_and_map_files(tmp_path, map_format):
    root = tmp_path / "scans"
    (root / "a").mkdir(parents=True)
    maps = torch.rand(2, 1, 8, 12)
    with PredictionTable(str(tmp_path / "out"), str(root), 0.5, map_format) as table:
        table.add(str(root / "a" / "x.png"), None, 0.75, True, torch.rand(3, 8, 12), maps[0])
        table.add(str(root / "vol.nii.gz"), 3, 0.25, False, torch.rand(3, 8, 12), maps[1])
    rows = list(csv.DictReader(open(tmp_path / "out" / "predictions.csv")))
    assert list(rows[0]) == list(PredictionTable.COLUMNS)
    assert [(r["score"], r["anomalous"], r["threshold"], r["slice"]) for r in rows] == [
        ("0.75", "1", "0.5", ""),
        ("0.25", "0", "0.5", "3"),
    ]
    if map_format == "none":
        assert [r["heatmap"] for r in rows] == ["", ""]
        return
    suffix = ".png" if map_format == "png" else ".nii.gz"
    assert rows[0]["heatmap"] == f"heatmaps/a/x.png{suffix}" and rows[1]["heatmap"].endswith(f"slice0003{suffix}")
    if map_format == "nifti":  # the raw values, x along the image's width
        values = nib.load(tmp_path / "out" / rows[0]["heatmap"]).get_fdata()
        assert torch.allclose(torch.from_numpy(values.T).float(), maps[0, 0])


def test_unknown_map_format(tmp_path):
    with pytest.raises(ValueError, match="jpeg"):
        PredictionTable(str(tmp_path), str(tmp_path), 0.5, "jpeg")


def test_writer_closes_its_table_and_lets_an_error_through(tmp_path):
    from ignite.engine import Engine

    from monai_d2fad.prediction_table import PredictionWriter
    from monai_d2fad.task_package import RegisteredTask

    task = RegisteredTask(detector=None, modality=None, image_size=8, threshold={"value": 0.5}, support_files=[])

    def fail(engine, batch):
        raise RuntimeError("unreadable batch")

    engine = Engine(fail)
    writer = PredictionWriter(task, str(tmp_path), str(tmp_path))
    writer.attach(engine)
    with pytest.raises(RuntimeError, match="unreadable batch"):
        engine.run([0])
    assert writer.table is None and (tmp_path / "scores.csv").read_text().startswith("path,slice")
