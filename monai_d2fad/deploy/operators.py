"""MONAI Deploy operators: score the series a DICOM pipeline selected, or a folder of image files."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from monai.deploy.core import Fragment, Operator, OperatorSpec

from monai_d2fad.data.images import ReadImaged, expand_slices
from monai_d2fad.data.tasks import list_images
from monai_d2fad.deploy.inputs import (
    dicom_identifiers,
    instance_fields,
    needs_inversion,
    slice_preset,
    volume_slices,
)
from monai_d2fad.deploy.report import AnomalyReport
from monai_d2fad.deploy.sr import structured_report
from monai_d2fad.task_package import RegisteredTask
from monai_d2fad.visualize import heatmap_name

__all__ = ["D2FADFolderOperator", "D2FADSRWriterOperator", "D2FADSeriesOperator", "selected_datasets"]

logger = logging.getLogger(__name__)


class _TaskOperator(Operator):
    """An operator that scores an input (``input_folder``) with a registered task and writes into ``output_folder``."""

    def __init__(
        self,
        fragment: Fragment,
        *args,
        package: RegisteredTask,
        input_folder: str | Path,
        output_folder: str | Path,
        **kwargs,
    ):
        self.package, self.input_folder, self.output_folder = package, Path(input_folder), Path(output_folder)
        super().__init__(fragment, *args, **kwargs)


class D2FADSeriesOperator(_TaskOperator):
    """Scores every slice of the volume from ``DICOMSeriesToVolumeOperator`` against the task's references.

    Named inputs: ``image`` (the volume) and ``study_selected_series_list`` (the series' instances, in the
    volume's slice order once ``DICOMSeriesToVolumeOperator`` has sorted them). Named outputs: ``report`` (the
    ``AnomalyReport``, for ``D2FADSRWriterOperator``) and ``pdf_bytes`` (for ``DICOMEncapsulatedPDFWriterOperator``).
    Files: ``result.json``, ``report.pdf``, ``colorbar.png`` and ``heatmaps/`` (named after the instances' files
    under ``input_folder``) in ``output_folder``.
    """

    def setup(self, spec: OperatorSpec):
        spec.input("image")
        spec.input("study_selected_series_list")
        spec.output("report")
        spec.output("pdf_bytes")

    def compute(self, op_input, op_output, context):
        image = op_input.receive("image")
        datasets = selected_datasets(op_input.receive("study_selected_series_list"))
        first = datasets[0]
        title = str(first.get("SeriesDescription") or f"series {first.SeriesInstanceUID}")
        preset = slice_preset(self.package.modality, self.package.image_size)
        slices = volume_slices(image.asnumpy(), preset, needs_inversion(first))
        samples = (dict(s, **instance_fields(ds, str(self.input_folder))) for s, ds in zip(slices, datasets))
        report = AnomalyReport(self.package, title, dicom_identifiers(first)).score(samples, preset)
        summary = report.write(str(self.output_folder))
        logger.info("%s: %s, score %.4g", title, summary["decision"], summary["score"])
        op_output.emit(report, "report")
        op_output.emit((self.output_folder / "report.pdf").read_bytes(), "pdf_bytes")  # rendered once, by write


class D2FADSRWriterOperator(Operator):
    """Writes the Comprehensive SR of a ``report`` (``deploy.sr``) into ``output_folder``, filed in the study of the
    scored series (input ``study_selected_series_list``) and named ``<SOPInstanceUID>.dcm``."""

    def __init__(self, fragment: Fragment, *args, output_folder: str | Path, **kwargs):
        self.output_folder = Path(output_folder)
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec):
        spec.input("report")
        spec.input("study_selected_series_list")

    def compute(self, op_input, op_output, context):
        report = op_input.receive("report")
        sr = structured_report(report, selected_datasets(op_input.receive("study_selected_series_list")))
        self.output_folder.mkdir(parents=True, exist_ok=True)
        sr.save_as(self.output_folder / f"{sr.SOPInstanceUID}.dcm", enforce_file_format=True)


def selected_datasets(study_selected_series_list) -> list:
    """The pydicom datasets of the first selected series' instances, in the series' (sorted) order."""
    series = study_selected_series_list[0].selected_series[0].series
    return [instance.get_native_sop_instance() for instance in series.get_sop_instances()]


class D2FADFolderOperator(_TaskOperator):
    """Scores the images of a folder (PNG/JPEG, NIfTI and mha slices); a root operator with no inputs.

    An unreadable file stops the run with its path and the reason, before anything is written.
    """

    def setup(self, spec: OperatorSpec):
        pass

    def compute(self, op_input, op_output, context):
        items = expand_slices(list_images(str(self.input_folder)))
        read = ReadImaged(self.package.image_size, self.package.modality, keep_source=True)
        report = AnomalyReport(self.package, self.input_folder.name)
        report.score((dict(read(item), **self.fields(item)) for item in items), read.pipeline(None))
        summary = report.write(str(self.output_folder))
        logger.info("%s: %s, score %.4g", self.input_folder, summary["decision"], summary["score"])

    def fields(self, item: dict) -> dict:
        """Name, input-relative file and heatmap file of one image or volume slice."""
        path, index = str(item["image"]), item.get("slice")
        relative = os.path.relpath(path, self.input_folder)
        return {
            "name": relative + ("" if index is None else f" slice {index}"),
            "source": relative,
            "slice": index,
            "heatmap": os.path.join("heatmaps", heatmap_name(path, index, str(self.input_folder))),
        }
