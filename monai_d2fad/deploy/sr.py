"""The DICOM Comprehensive SR of a Deploy run: a TID 1500 measurement report (highdicom) that systems read without
parsing text.

One measurement group for the study's decision (the highest score, referencing the most anomalous instance), then
one per scored instance: the anomaly score and the threshold as NUM items (UCUM unit ``1``), the decision as a coded
finding (SNOMED CT Normal / Abnormal), the algorithm's name and version, and a reference to the scored instance.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
import pydicom
from pydicom.sr.codedict import codes

import monai_d2fad
from monai_d2fad.deploy.report import AnomalyReport, ImageResult

__all__ = ["ANOMALY_SCORE", "DECISION", "THRESHOLD", "structured_report"]

# "99" coding schemes are private by the DICOM convention (PS3.16, 8.2)
SCHEME = "99D2FAD"
ANOMALY_SCORE = hd.sr.CodedConcept("ANOMALY_SCORE", SCHEME, "Anomaly score")
THRESHOLD = hd.sr.CodedConcept("THRESHOLD", SCHEME, "Anomaly score threshold")
STUDY_FINDING = hd.sr.CodedConcept("STUDY", SCHEME, "Highest anomaly score of the series")
DECISION = codes.DCM.Finding
NORMAL = hd.sr.CodedConcept("17621005", "SCT", "Normal")
ABNORMAL = hd.sr.CodedConcept("263654008", "SCT", "Abnormal")
NO_UNITS = hd.sr.CodedConcept("1", "UCUM", "no units")
IMAGING_PROCEDURE = hd.sr.CodedConcept("363679005", "SCT", "Imaging procedure")
SERIES_NUMBER = 9901


def _group(
    report: AnomalyReport, result: ImageResult, label: str, algorithm: hd.sr.AlgorithmIdentification
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    def number(name: hd.sr.CodedConcept, value: float) -> hd.sr.Measurement:
        return hd.sr.Measurement(name=name, value=value, unit=NO_UNITS, algorithm_id=algorithm)

    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=label),
        algorithm_id=algorithm,
        measurements=[number(ANOMALY_SCORE, result.score), number(THRESHOLD, report.threshold)],
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(name=DECISION, value=ABNORMAL if result.anomalous else NORMAL)
        ],
        source_images=[hd.sr.SourceImageForMeasurementGroup(result.sop_class_uid, result.sop_instance_uid)],
    )


def structured_report(report: AnomalyReport, evidence: Sequence[pydicom.Dataset]) -> hd.sr.ComprehensiveSR:
    """The SR of ``report`` (scored DICOM instances), filed in the study of ``evidence`` (the scored instances'
    datasets: patient, study and the referenced instances are taken from them)."""
    if any(r.sop_instance_uid is None for r in report.results):
        raise ValueError("a structured report needs DICOM input: some results have no SOP Instance UID")
    algorithm = hd.sr.AlgorithmIdentification(name=report.model_name, version=monai_d2fad.__version__)
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=hd.UID(), name="monai-d2fad", manufacturer_name="monai-d2fad", model_name=report.model_name
    )
    context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device, observer_identifying_attributes=device
        )
    )
    groups = [_group(report, report.top, STUDY_FINDING.meaning, algorithm)]  # the study's decision is the top one's
    groups += [_group(report, r, r.name, algorithm) for r in report.results]
    content = hd.sr.MeasurementReport(
        observation_context=context, procedure_reported=IMAGING_PROCEDURE, imaging_measurements=groups
    )
    sr = hd.sr.ComprehensiveSR(
        evidence=list(evidence),
        content=content,
        series_instance_uid=hd.UID(),
        series_number=SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="monai-d2fad",
        is_complete=True,
        series_description=f"{report.model_name} anomaly score",
    )
    scheme = pydicom.Dataset()
    scheme.CodingSchemeDesignator, scheme.CodingSchemeName = SCHEME, "monai-d2fad anomaly detection"
    sr.CodingSchemeIdentificationSequence = [scheme]  # declares the private scheme of the score concepts
    return sr
