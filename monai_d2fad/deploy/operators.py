"""MONAI Deploy operators: score the series a DICOM pipeline selected, or a folder of image files."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from monai.deploy.core import Fragment, Operator, OperatorSpec

from monai_d2fad.data.images import ImageDataset, expand_slices
from monai_d2fad.data.tasks import list_images
from monai_d2fad.deploy.inputs import volume_slices
from monai_d2fad.deploy.report import AnomalyReport
from monai_d2fad.task_package import RegisteredTask

__all__ = ["D2FADFolderOperator", "D2FADSeriesOperator"]

logger = logging.getLogger(__name__)


def _series_info(study_selected_series_list) -> tuple[str, bool]:
    """Description of the first selected series and whether its images are MONOCHROME1 (inverted grey scale)."""
    series = study_selected_series_list[0].selected_series[0].series
    first = series.get_sop_instances()[0].get_native_sop_instance()
    description = getattr(series, "SeriesDescription", "") or f"series {series.SeriesInstanceUID}"
    return str(description), str(getattr(first, "PhotometricInterpretation", "")) == "MONOCHROME1"


class D2FADSeriesOperator(Operator):
    """Scores every slice of the volume from ``DICOMSeriesToVolumeOperator`` against the task's references.

    Named inputs: ``image`` (the volume) and ``study_selected_series_list`` (for the series description and its
    photometric interpretation). Named outputs: ``result_text`` (for ``DICOMTextSRWriterOperator``) and
    ``pdf_bytes`` (for ``DICOMEncapsulatedPDFWriterOperator``). Files: ``result.json``, ``report.pdf`` and
    ``heatmaps/`` in ``output_folder``.
    """

    def __init__(self, fragment: Fragment, *args, package: RegisteredTask, output_folder: str | Path, **kwargs):
        self.package, self.output_folder = package, Path(output_folder)
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec):
        spec.input("image")
        spec.input("study_selected_series_list")
        spec.output("result_text")
        spec.output("pdf_bytes")

    def compute(self, op_input, op_output, context):
        image = op_input.receive("image")
        title, invert = _series_info(op_input.receive("study_selected_series_list"))
        slices = volume_slices(image.asnumpy(), self.package.modality, self.package.image_size, invert)
        report = AnomalyReport(self.package, title).score(slices, [title] * len(slices), list(range(len(slices))))
        summary = report.write(str(self.output_folder))
        logger.info("%s: %s, score %.4g", title, summary["decision"], summary["score"])
        op_output.emit(report.text(), "result_text")
        op_output.emit((self.output_folder / "report.pdf").read_bytes(), "pdf_bytes")  # rendered once, by write


class D2FADFolderOperator(Operator):
    """Scores the images of a folder (PNG/JPEG, NIfTI and mha slices); a root operator with no inputs.

    An unreadable file stops the run with its path and the reason, before anything is written.
    """

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

    def setup(self, spec: OperatorSpec):
        pass

    def compute(self, op_input, op_output, context):
        items = expand_slices(list_images(str(self.input_folder)))
        data = ImageDataset(items, self.package.image_size, self.package.modality, progress=False)
        images = torch.stack([data[i]["image"] for i in range(len(data))])
        report = AnomalyReport(self.package, self.input_folder.name)
        report.score(images, [str(it["image"]) for it in items], [it.get("slice") for it in items])
        summary = report.write(str(self.output_folder))
        logger.info("%s: %s, score %.4g", self.input_folder, summary["decision"], summary["score"])
