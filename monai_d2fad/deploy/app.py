"""The D²4FAD MONAI Deploy application: a DICOM study or an image folder in; JSON, heatmaps, DICOM SR and PDF out.

Run it with ``python -m monai_d2fad.deploy -i INPUT -m MODEL_PATH -o OUTPUT`` (``MODEL_PATH``: a task package,
or a folder holding one), or package it with ``monai-deploy package`` (see the README).
"""

from __future__ import annotations

import logging
from pathlib import Path

from monai.deploy.conditions import CountCondition
from monai.deploy.core import Application
from monai.deploy.operators import (
    DICOMDataLoaderOperator,
    DICOMEncapsulatedPDFWriterOperator,
    DICOMSeriesSelectorOperator,
    DICOMSeriesToVolumeOperator,
    EquipmentInfo,
    ModelInfo,
)

import monai_d2fad
from monai_d2fad.deploy.inputs import check_dicom_study, input_kind, load_model_path, selection_rules
from monai_d2fad.deploy.operators import D2FADFolderOperator, D2FADSeriesOperator, D2FADSRWriterOperator
from monai_d2fad.deploy.report import check_output
from monai_d2fad.devices import default_device

__all__ = ["D2FADApp"]

logger = logging.getLogger(__name__)


class D2FADApp(Application):
    """Few-shot anomaly detection with a D²4FAD task package (a trained model plus a task's normal references).

    DICOM input goes through the SDK's loader, a series selector whose rules follow the task's modality, and
    series-to-volume; every slice is scored. The outputs are:
    - ``result.json`` (with the DICOM UIDs), ``report.pdf`` (one page), ``colorbar.png`` and ``heatmaps/`` at the
      source images' size, named after the input files;
    - for DICOM input, ``dicom/`` with a Comprehensive SR (TID 1500: score and threshold as NUM items, the coded
      decision, references to the scored instances) and an encapsulated PDF, in the input's study.

    Input, model and output are checked before the graph runs: a study without a matching series, a corrupt
    file, a model that is not a task package or an output that already holds a result stop the run with a clear
    message and nothing written.
    """

    name = "d2fad-anomaly-detection"
    description = "D2FAD few-shot anomaly detection: anomaly score, decision and heatmap"
    version = monai_d2fad.__version__

    def compose(self):
        context = Application.init_app_context(self.argv)
        input_folder, output = Path(context.input_path), Path(context.output_path)
        device = default_device()
        package = load_model_path(str(context.model_path), device)
        check_output(str(output))
        if input_kind(str(input_folder)) == "files":
            folder = D2FADFolderOperator(
                self, CountCondition(self, 1), package=package, input_folder=input_folder, output_folder=output,
                name="d2fad_folder_op",
            )  # fmt: skip
            self.add_operator(folder)
            return
        check_dicom_study(str(input_folder), package.modality)
        loader = DICOMDataLoaderOperator(self, CountCondition(self, 1), input_folder=input_folder, name="loader_op")
        selector = DICOMSeriesSelectorOperator(self, rules=selection_rules(package.modality), name="selector_op")
        to_volume = DICOMSeriesToVolumeOperator(self, name="to_volume_op")
        scorer = D2FADSeriesOperator(
            self, package=package, input_folder=input_folder, output_folder=output, name="d2fad_op"
        )
        model_info = ModelInfo("monai-d2fad", "D2FAD few-shot anomaly detection", monai_d2fad.__version__)
        equipment = EquipmentInfo(manufacturer="monai-d2fad", manufacturer_model="D2FAD")
        sr_writer = D2FADSRWriterOperator(self, output_folder=output / "dicom", name="sr_writer_op")
        pdf_writer = DICOMEncapsulatedPDFWriterOperator(
            self, copy_tags=True, model_info=model_info, equipment_info=equipment, output_folder=output / "dicom",
            custom_tags={"SeriesDescription": "D2FAD anomaly report"}, name="pdf_writer_op",
        )  # fmt: skip
        series = {("study_selected_series_list", "study_selected_series_list")}
        self.add_flow(loader, selector, {("dicom_study_list", "dicom_study_list")})
        self.add_flow(selector, to_volume, series)
        self.add_flow(selector, scorer, series)
        self.add_flow(to_volume, scorer, {("image", "image")})
        self.add_flow(scorer, sr_writer, {("report", "report")})
        self.add_flow(scorer, pdf_writer, {("pdf_bytes", "pdf_bytes")})
        self.add_flow(selector, sr_writer, series)
        self.add_flow(selector, pdf_writer, series)
