"""The deploy application's results: scores, decision, result.json, source-size heatmaps and the PDF (no SDK)."""

import io
import json
import os

import numpy as np
import pytest
from PIL import Image
from pydicom.uid import generate_uid

import monai_d2fad
from monai_d2fad.deploy.inputs import slice_preset, volume_slices
from monai_d2fad.deploy.report import AnomalyReport, check_output
from monai_d2fad.task_package import load_task_package

MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
IDENTIFIERS = {
    "PatientName": "Test^Patient",
    "PatientID": "P123",
    "StudyInstanceUID": "1.2.3",
    "SeriesInstanceUID": "1.2.3.4",
    "Modality": "MR",
}


@pytest.fixture
def report(task_package_file):
    package = load_task_package(task_package_file())
    preset = slice_preset(package.modality, package.image_size)
    volume = np.random.default_rng(0).integers(0, 4000, (3, 40, 50))  # 3 slices of 40 rows x 50 columns
    samples = (
        dict(s, name=f"image {i}", source=f"s{i}.dcm", heatmap=f"heatmaps/s{i}.dcm.png", sop_class_uid=MR_IMAGE,
             sop_instance_uid=generate_uid())
        for i, s in enumerate(volume_slices(volume, preset))
    )  # fmt: skip
    return AnomalyReport(package, "test series", IDENTIFIERS, batch_size=2).score(samples, preset)


def test_scores_and_decision(report):
    assert [r.name for r in report.results] == ["image 0", "image 1", "image 2"]
    assert report.anomalous == any(r.score >= report.threshold for r in report.results)
    assert report.top.score == max(r.score for r in report.results)
    assert report.ranked(2) == sorted(range(3), key=lambda i: -report.results[i].score)[:2]


def test_views_are_at_the_source_size(report):
    source, heat = report.view(0)
    assert source.shape == heat.shape == (3, 40, 50)
    assert not np.allclose(source.numpy(), heat.numpy())  # the map is blended in


def test_write_puts_every_file_in_place_and_refuses_to_overwrite(report, tmp_path):
    out = str(tmp_path / "out")
    summary = report.write(out)
    assert sorted(os.listdir(out)) == ["colorbar.png", "heatmaps", "report.pdf", "result.json"]  # no staging left
    with open(os.path.join(out, "result.json")) as f:
        assert json.load(f) == json.loads(json.dumps(summary))
    assert summary["decision"] in ("normal", "anomalous") and len(summary["images"]) == 3
    assert sorted(os.listdir(os.path.join(out, "heatmaps"))) == ["s0.dcm.png", "s1.dcm.png", "s2.dcm.png"]
    assert Image.open(os.path.join(out, "heatmaps", "s0.dcm.png")).size == (50, 40)  # width x height of the source
    with pytest.raises(FileExistsError, match="already holds"):
        report.write(out)
    with pytest.raises(FileExistsError):
        check_output(out)


def test_summary_has_uids_model_version_and_time_but_no_local_paths_or_patient(report):
    report.package.threshold = {"method": "validation", "value": 1.0, "f1": 0.9, "folder": "/site/private/val"}
    summary = report.summary()
    assert summary["model"] == {"name": "D2FAD", "monai_d2fad_version": monai_d2fad.__version__}
    assert summary["created"].endswith("+00:00")  # UTC, ISO 8601
    assert summary["threshold"] == {"method": "validation", "value": 1.0, "f1": 0.9}
    assert summary["study"] == {"StudyInstanceUID": "1.2.3", "SeriesInstanceUID": "1.2.3.4", "Modality": "MR"}
    assert all(image["sop_instance_uid"] and image["sop_class_uid"] == MR_IMAGE for image in summary["images"])
    text = json.dumps(summary)
    assert "/site/private" not in text and "Test^Patient" not in text and "P123" not in text


def test_pdf_is_one_page_with_identifiers_decision_score_and_model(report):
    from pypdf import PdfReader

    pdf = PdfReader(io.BytesIO(report.pdf()))
    assert len(pdf.pages) == 1
    text = pdf.pages[0].extract_text()
    for expected in ("Test^Patient", "P123", "1.2.3", "ANOMALOUS" if report.anomalous else "NORMAL",
                     f"{report.top.score:.4g}", f"{report.threshold:.4g}", f"monai-d2fad {monai_d2fad.__version__}",
                     "D2FAD", "Research use only", "threshold"):  # fmt: skip
        assert expected in text, expected
