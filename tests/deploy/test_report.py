"""The deploy application's results: scores, decision, JSON, heatmaps, SR text and PDF (no SDK needed)."""

import json
import os

import pytest
import torch

from monai_d2fad.deploy.report import AnomalyReport, check_output
from monai_d2fad.task_package import load_task_package


@pytest.fixture
def report(task_package_file):
    package = load_task_package(task_package_file())
    images = torch.rand(3, 3, 64, 64)
    return AnomalyReport(package, "test series", batch_size=2).score(images, ["series"] * 3, [0, 1, 2])


def test_scores_decision_and_text(report):
    assert [r.slice for r in report.results] == [0, 1, 2]
    assert report.anomalous == any(r.score >= report.threshold for r in report.results)
    text = report.text()
    assert text.startswith("D2FAD anomaly detection: test series")
    assert ("ANOMALOUS" if report.anomalous else "NORMAL") in text
    assert "Research use only" in text
    assert report.pdf().startswith(b"%PDF")


def test_write_puts_every_file_in_place_and_refuses_to_overwrite(report, tmp_path):
    out = str(tmp_path / "out")
    summary = report.write(out)
    assert sorted(os.listdir(out)) == ["heatmaps", "report.pdf", "result.json"]  # no staging folder left
    with open(os.path.join(out, "result.json")) as f:
        assert json.load(f) == json.loads(json.dumps(summary))
    assert summary["decision"] in ("normal", "anomalous") and len(summary["images"]) == 3
    assert sorted(os.listdir(os.path.join(out, "heatmaps"))) == ["0000.png", "0001.png", "0002.png"]
    with pytest.raises(FileExistsError, match="already holds"):
        report.write(out)
    with pytest.raises(FileExistsError):
        check_output(out)


def test_summary_has_model_version_and_time_but_no_local_paths(report):
    import monai_d2fad

    report.package.threshold = {"method": "validation", "value": 1.0, "f1": 0.9, "folder": "/site/private/val"}
    summary = report.summary()
    assert summary["model"] == {"name": "D2FAD", "monai_d2fad_version": monai_d2fad.__version__}
    assert summary["created"].endswith("+00:00")  # UTC, ISO 8601
    assert summary["threshold"] == {"method": "validation", "value": 1.0, "f1": 0.9}
    assert "/site/private" not in json.dumps(summary)
