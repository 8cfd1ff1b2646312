"""Score a study or a folder with a task package and write what a clinical system takes: ``result.json``, heatmaps at
the source images' size, a colour bar and a one-page PDF report (the DICOM SR is built from it in ``deploy.sr``)."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from itertools import islice

import torch
from monai.transforms import Compose

import monai_d2fad
from monai_d2fad.task_package import RegisteredTask
from monai_d2fad.transforms.presets import restore_map
from monai_d2fad.visualize import THRESHOLD_SCALE, draw_threshold_colorbar, pyplot, save_png, threshold_overlay

__all__ = ["IDENTIFIERS", "OUTPUTS", "STUDY_UIDS", "AnomalyReport", "ImageResult", "check_output"]

DISCLAIMER = "Research use only: not for diagnostic use."
OUTPUTS = ("result.json", "report.pdf", "heatmaps", "colorbar.png", "dicom")
# identifiers of a DICOM input that result.json keeps (no patient data: the SR and the PDF carry those)
STUDY_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription")
# identifiers the PDF report shows, in this order
REPORT_IDENTIFIERS = (
    ("Patient", "PatientName"),
    ("Patient ID", "PatientID"),
    ("Birth date", "PatientBirthDate"),
    ("Sex", "PatientSex"),
    ("Study date", "StudyDate"),
    ("Accession", "AccessionNumber"),
    ("Study", "StudyDescription"),
    ("Series", "SeriesDescription"),
    ("Modality", "Modality"),
    ("Study UID", "StudyInstanceUID"),
)
# every study and series attribute a report keeps of a DICOM input (``deploy.inputs.dicom_identifiers``)
IDENTIFIERS = tuple(dict.fromkeys([*(key for _, key in REPORT_IDENTIFIERS), *STUDY_UIDS]))


def check_output(output: str) -> None:
    """Refuse an output folder that already holds a result: nothing written before is replaced."""
    taken = [name for name in OUTPUTS if os.path.exists(os.path.join(output, name))]
    if taken:
        raise FileExistsError(f"output {output} already holds {taken}: give an empty or new output folder")


@dataclass
class ImageResult:
    """The result of one image or slice; ``source`` is the input-relative file (never a local absolute path)."""

    name: str
    source: str
    slice: int | None
    score: float
    anomalous: bool
    heatmap: str
    sop_instance_uid: str | None = None
    sop_class_uid: str | None = None


@dataclass
class _View:
    """What drawing one result needs: the source image (uint8 ``[3, H, W]``), its model-size map and the
    preprocessed image that records the preset's spatial steps."""

    source: torch.Tensor
    map: torch.Tensor
    image: torch.Tensor


class AnomalyReport:
    """The scores, decisions and heatmaps of one input (a DICOM series or a folder of images).

    Args:
        package: the task (detector, preprocessing, threshold).
        title: what was scored, for the reports (e.g. the series description).
        identifiers: DICOM attributes of the study and series (``PatientName``, ``StudyInstanceUID``, ...) for the
            PDF report; ``result.json`` keeps only ``STUDY_UIDS``.
        batch_size: images scored at once.
    """

    def __init__(
        self,
        package: RegisteredTask,
        title: str = "",
        identifiers: Mapping[str, str] | None = None,
        batch_size: int = 16,
    ):
        self.package, self.title, self.batch_size = package, title, batch_size
        self.identifiers = dict(identifiers or {})
        self.threshold = float(package.threshold["value"])
        self.results: list[ImageResult] = []
        self._views: list[_View] = []
        self._preset: Compose | None = None

    def score(self, samples: Iterable[dict], preset: Compose) -> AnomalyReport:
        """Score the outputs of ``preset`` (made with ``keep_source=True``), read lazily ``batch_size`` at a time.

        Each sample holds ``image`` and ``image_source`` (from the preset), ``name``, ``source`` and ``heatmap``
        (its file under the output), and for DICOM ``sop_instance_uid`` and ``sop_class_uid``.
        """
        self._preset, detector = preset, self.package.detector
        for batch in _batches(iter(samples), self.batch_size):
            images = torch.stack([s["image"].as_tensor() for s in batch])
            with torch.inference_mode():
                maps = detector(images.to(detector.device)).float().cpu()
                judged = self.package.judge(images, maps, overlays=False)
            for s, m, score, anomalous in zip(batch, maps, judged.scores.tolist(), judged.anomalous.tolist()):
                fields = {
                    k: s.get(k) for k in ("name", "source", "slice", "heatmap", "sop_instance_uid", "sop_class_uid")
                }
                self.results.append(ImageResult(score=score, anomalous=anomalous, **fields))
                source = (s["image_source"].as_tensor() * 255).round().to(torch.uint8)
                self._views.append(_View(source, m, s["image"]))
        return self

    @property
    def anomalous(self) -> bool:
        """The decision for the whole input: anomalous if any image or slice is."""
        return any(r.anomalous for r in self.results)

    @property
    def top(self) -> ImageResult:
        """The most anomalous image or slice."""
        return max(self.results, key=lambda r: r.score)

    @property
    def model_name(self) -> str:
        """``D2FAD``, ``DCAM``, ``TwoStudents`` or ``PDD``: the model of the registered task."""
        return type(self.package.detector.model).__name__

    def ranked(self, n: int) -> list[int]:
        """Indices of the ``n`` most anomalous results, highest score first."""
        return sorted(range(len(self.results)), key=lambda i: -self.results[i].score)[:n]

    def view(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The source image and its heatmap overlay, both ``[3, H, W]`` in [0, 1] at the source image's size."""
        v = self._views[index]
        source = v.source.float() / 255
        anomaly_map = restore_map(self._preset, v.image, v.map)
        return source, threshold_overlay(source[None], anomaly_map[None], self.threshold)[0]

    def summary(self) -> dict:
        """``result.json``: the decision, scores, threshold, model and version, when it was made, the DICOM UIDs;
        no local paths (a validation threshold's folder is left out) and no patient data."""
        return {
            "title": self.title,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model": {"name": self.model_name, "monai_d2fad_version": monai_d2fad.__version__},
            "study": {k: self.identifiers[k] for k in STUDY_UIDS if self.identifiers.get(k)},
            "decision": "anomalous" if self.anomalous else "normal",
            "score": self.top.score,
            "most_anomalous": self.top.name,
            "threshold": self.package.public_threshold,
            "heatmap_scale": {**THRESHOLD_SCALE, "colorbar": "colorbar.png"},
            "modality": self.package.modality,
            "references": len(self.package.support_files),
            "images": [asdict(r) for r in self.results],
            "note": DISCLAIMER,
        }

    def pdf(self, shown: int = 3) -> bytes:
        """A one-page A4 report: identifiers, the decision and score against the threshold, the ``shown`` most
        anomalous images beside their heatmaps with the colour bar, and the model, its version and the references."""
        from matplotlib.backends.backend_pdf import PdfPages

        plt = pyplot()
        fig = plt.figure(figsize=(8.27, 11.69))
        self._draw_header(fig)
        order = self.ranked(shown)
        row_height = 0.2  # up to three rows from the top of the page
        for row, i in enumerate(order):
            bottom = 0.7 - (row + 1) * row_height
            source, heat = self.view(i)
            for col, (picture, caption) in enumerate(((source, "image"), (heat, "anomaly heatmap"))):
                ax = fig.add_axes([0.06 + col * 0.42, bottom + 0.01, 0.4, row_height - 0.035])
                ax.imshow(picture.permute(1, 2, 0).numpy())
                ax.set_title(f"{self.results[i].name}: {caption}", fontsize=7)
                ax.axis("off")
            mark = "ANOMALOUS" if self.results[i].anomalous else "normal"
            fig.text(0.48, bottom - 0.003, f"score {self.results[i].score:.4g} ({mark})", ha="center", fontsize=8)
        draw_threshold_colorbar(fig.add_axes([0.92, 0.25, 0.02, 0.35]), self.threshold)
        self._draw_footer(fig, shown=len(order))
        buffer = io.BytesIO()
        with PdfPages(buffer) as pdf:
            pdf.savefig(fig)
        plt.close(fig)
        return buffer.getvalue()

    def _draw_header(self, fig) -> None:
        fig.text(0.06, 0.965, "Anomaly detection report", fontsize=16, weight="bold", va="top")
        fig.text(0.06, 0.94, self.title or "", fontsize=9, va="top", color="0.3")
        rows = [(label, self.identifiers.get(key)) for label, key in REPORT_IDENTIFIERS]
        rows = [(label, str(value)) for label, value in rows if value] or [("Input", self.title or "-")]
        for j, (label, value) in enumerate(rows):
            x, y = 0.06 + (j % 2) * 0.46, 0.915 - (j // 2) * 0.017
            fig.text(x, y, f"{label}:", fontsize=8, weight="bold", va="top")
            fig.text(x + 0.1, y, value[:60], fontsize=8, va="top")
        decision, colour = ("ANOMALOUS", "#b00020") if self.anomalous else ("NORMAL", "#1b7f3b")
        fig.text(0.06, 0.80, decision, fontsize=22, weight="bold", color=colour, va="top")
        relation = ">=" if self.top.score >= self.threshold else "<"
        fig.text(
            0.36, 0.795,
            f"Highest score {self.top.score:.4g} {relation} threshold {self.threshold:.4g}\n"
            f"({self.top.name}; {sum(r.anomalous for r in self.results)} of {len(self.results)} images above)",
            fontsize=9, va="top",
        )  # fmt: skip

    def _draw_footer(self, fig, shown: int) -> None:
        t = self.package.threshold
        lines = [
            f"Model: {self.model_name}, monai-d2fad {monai_d2fad.__version__}; modality preset "
            f"{self.package.modality}; {len(self.package.support_files)} normal references; threshold "
            f"{self.threshold:.4g} ({t.get('method', 'given')}).",
            f"Shown: the {shown} most anomalous of {len(self.results)} images. Heatmap colours: green at the "
            "threshold, red far above it (v / (v + threshold)).",
            f"Created {datetime.now(timezone.utc).isoformat(timespec='seconds')}. {DISCLAIMER}",
        ]
        fig.text(0.06, 0.06, "\n".join(lines), fontsize=7, va="bottom", color="0.25")

    def colorbar_png(self) -> bytes:
        """The heatmaps' colour bar as a PNG, ticked in anomaly-map values with the threshold marked."""
        plt = pyplot()
        fig = plt.figure(figsize=(1.2, 3.2), dpi=100)
        draw_threshold_colorbar(fig.add_axes([0.3, 0.05, 0.2, 0.85]), self.threshold)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        return buffer.getvalue()

    def write(self, output: str) -> dict:
        """Write ``result.json``, ``report.pdf``, ``colorbar.png`` and ``heatmaps/`` into ``output``.

        The files are made in a temporary folder inside ``output`` and moved in at the end, so that a failure
        leaves no partial result. An earlier result there is never replaced (``check_output``).
        """
        if not self.results:
            raise ValueError("nothing was scored")
        check_output(output)
        os.makedirs(output, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".d2fad-", dir=output)
        try:
            for i, result in enumerate(self.results):
                save_png(self.view(i)[1], os.path.join(staging, result.heatmap))
            for name, content in (("report.pdf", self.pdf()), ("colorbar.png", self.colorbar_png())):
                with open(os.path.join(staging, name), "wb") as f:
                    f.write(content)
            summary = self.summary()
            with open(os.path.join(staging, "result.json"), "w", encoding="utf-8") as f:
                json.dump(summary, f, indent=2)
            for name in ("heatmaps", "report.pdf", "colorbar.png", "result.json"):
                os.replace(os.path.join(staging, name), os.path.join(output, name))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return summary


def _batches(samples: Iterator[dict], size: int) -> Iterator[list[dict]]:
    while batch := list(islice(samples, size)):
        yield batch
