"""Score a study or a folder with a task package and write what a clinical system takes: JSON, heatmap PNGs, the
text of a DICOM SR and a PDF report."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import torch

import monai_d2fad
from monai_d2fad.task_package import RegisteredTask
from monai_d2fad.visualize import save_png

__all__ = ["OUTPUTS", "AnomalyReport", "ImageResult", "check_output"]

DISCLAIMER = "Research use only: not for diagnostic use."
OUTPUTS = ("result.json", "report.pdf", "heatmaps", "dicom")


def check_output(output: str) -> None:
    """Refuse an output folder that already holds a result: nothing written before is replaced."""
    taken = [name for name in OUTPUTS if os.path.exists(os.path.join(output, name))]
    if taken:
        raise FileExistsError(f"output {output} already holds {taken}: give an empty or new output folder")


@dataclass
class ImageResult:
    """The result of one image or slice."""

    name: str
    source: str
    slice: int | None
    score: float
    anomalous: bool
    heatmap: str


class AnomalyReport:
    """The scores, decisions and heatmaps of one input (a DICOM series or a folder of images).

    Args:
        package: the task (detector, preprocessing, threshold).
        title: what was scored, for the reports (e.g. the series description).
        batch_size: images scored at once.
    """

    def __init__(self, package: RegisteredTask, title: str = "", batch_size: int = 16):
        self.package, self.title, self.batch_size = package, title, batch_size
        self.threshold = float(package.threshold["value"])
        self.results: list[ImageResult] = []
        self.overlays: list[torch.Tensor] = []

    def score(
        self, images: torch.Tensor, sources: Sequence[str], slices: Sequence[int | None] | None = None
    ) -> AnomalyReport:
        """Score preprocessed images ``[N, 3, S, S]``; ``sources`` name where each came from."""
        detector = self.package.detector
        slices = list(slices) if slices is not None else [None] * len(images)
        for start in range(0, len(images), self.batch_size):
            batch = images[start : start + self.batch_size].to(detector.device)
            with torch.inference_mode():
                judged = self.package.judge(batch, detector(batch))
            self.overlays += list(judged.overlays)
            for i, (score, anomalous) in enumerate(zip(judged.scores.tolist(), judged.anomalous.tolist()), start):
                name = os.path.basename(sources[i]) + ("" if slices[i] is None else f" slice {slices[i]}")
                heatmap = f"heatmaps/{i:04d}.png"
                self.results.append(ImageResult(name, sources[i], slices[i], score, anomalous, heatmap))
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
        """``D2FAD`` or ``DCAM``: the model of the registered task."""
        return type(self.package.detector.model).__name__

    def summary(self) -> dict:
        """``result.json``: the decision, scores, threshold, model and version, when it was made; no local paths
        (a validation threshold's folder is left out)."""
        return {
            "title": self.title,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model": {"name": self.model_name, "monai_d2fad_version": monai_d2fad.__version__},
            "decision": "anomalous" if self.anomalous else "normal",
            "score": self.top.score,
            "most_anomalous": self.top.name,
            "threshold": {k: v for k, v in self.package.threshold.items() if k != "folder"},
            "modality": self.package.modality,
            "references": len(self.package.support_files),
            "images": [asdict(r) for r in self.results],
            "note": DISCLAIMER,
        }

    def text(self) -> str:
        """The report as plain text (the content of the DICOM Basic Text SR)."""
        t = self.package.threshold
        lines = [
            f"{self.model_name} anomaly detection{': ' + self.title if self.title else ''}",
            f"Decision: {'ANOMALOUS' if self.anomalous else 'NORMAL'}",
            f"Score: {self.top.score:.4g} (highest of {len(self.results)} images, {self.top.name}); "
            f"threshold {self.threshold:.4g} ({t.get('method', 'given')})",
            f"Normal references: {len(self.package.support_files)}; modality preset: {self.package.modality}",
            *[f"- {r.name}: {r.score:.4g} {'anomalous' if r.anomalous else 'normal'}" for r in self.results],
            DISCLAIMER,
        ]
        return "\n".join(lines)

    def pdf(self, heatmaps: int = 6) -> bytes:
        """A one-page PDF report: the text, then the heatmaps of the ``heatmaps`` (at most 6) most anomalous images
        (one colour scale: 0 to twice the threshold)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.backends.backend_pdf import PdfPages

        order = sorted(range(len(self.results)), key=lambda i: -self.results[i].score)[: min(heatmaps, 6)]
        buffer = io.BytesIO()
        with PdfPages(buffer) as pdf:
            fig = plt.figure(figsize=(8.27, 11.69))
            fig.text(0.06, 0.96, self.text(), va="top", family="monospace", fontsize=8, wrap=True)
            for j, i in enumerate(order):  # a 3 x 2 grid below the text
                ax = fig.add_axes([0.06 + (j % 3) * 0.31, 0.36 - (j // 3) * 0.3, 0.28, 0.26])
                ax.imshow(self.overlays[i].permute(1, 2, 0).numpy())
                ax.set_title(f"{self.results[i].name}\n{self.results[i].score:.4g}", fontsize=7)
                ax.axis("off")
            pdf.savefig(fig)
            plt.close(fig)
        return buffer.getvalue()

    def write(self, output: str) -> dict:
        """Write ``result.json``, ``report.pdf`` and ``heatmaps/`` into ``output``.

        The files are made in a temporary folder inside ``output`` and moved in at the end, so that a failure
        leaves no partial result. An earlier result there is never replaced (``check_output``).
        """
        if not self.results:
            raise ValueError("nothing was scored")
        check_output(output)
        os.makedirs(output, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".d2fad-", dir=output)
        try:
            os.makedirs(os.path.join(staging, "heatmaps"))
            for result, view in zip(self.results, self.overlays):
                save_png(view, os.path.join(staging, result.heatmap))
            with open(os.path.join(staging, "report.pdf"), "wb") as f:
                f.write(self.pdf())
            summary = self.summary()
            with open(os.path.join(staging, "result.json"), "w", encoding="utf-8") as f:
                json.dump(summary, f, indent=2)
            for name in ("heatmaps", "report.pdf", "result.json"):
                os.replace(os.path.join(staging, name), os.path.join(output, name))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return summary
