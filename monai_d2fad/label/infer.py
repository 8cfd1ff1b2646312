"""A MONAI Label infer task: anomaly score, decision and heatmap of one image against a task's normal references."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from monailabel.interfaces.tasks.infer_v2 import InferType
from monailabel.tasks.infer.basic_infer import BasicInferTask
from PIL import Image

from monai_d2fad.data.images import ReadImaged
from monai_d2fad.task_package import RegisteredTask, load_task_package
from monai_d2fad.visualize import save_png

__all__ = ["D2FADInferTask"]


class D2FADInferTask(BasicInferTask):
    """Scores the requested image with a D²4FAD task package (a trained model plus a task's normal references).

    The label returned is the anomalous region (the annotator's starting point): a PNG mask, 1 where the anomaly
    map reaches the task's threshold, at the model's resolution. The result JSON holds ``score``, ``anomalous``,
    ``threshold`` and ``heatmap``, the path of a colour overlay PNG (one scale per task: 0 to twice the threshold).

    Args:
        path: the task package file (``python -m monai_d2fad.task_package``); reloaded when the file changes.
        description: shown in MONAI Label's clients.
        other arguments: as ``BasicInferTask``.
    """

    def __init__(self, path: str, description: str = "D2FAD few-shot anomaly score and heatmap", **kwargs):
        super().__init__(
            path=path,
            network=None,
            type=InferType.SEGMENTATION,
            labels={"anomaly": 1},
            dimension=2,
            description=description,
            **kwargs,
        )
        self._package: tuple[float, RegisteredTask] | None = None

    @property
    def package(self) -> RegisteredTask:
        """The task package, loaded once and again whenever its file changes."""
        path = self.get_path()
        if path is None:
            raise FileNotFoundError(f"task package {self.path} does not exist")
        mtime = os.path.getmtime(path)
        if self._package is None or self._package[0] != mtime:
            self._package = (mtime, load_task_package(path))
        return self._package[1]

    def pre_transforms(self, data: dict | None = None) -> Sequence[Callable]:
        return [ReadImaged(self.package.image_size, self.package.modality)]

    def post_transforms(self, data: dict | None = None) -> Sequence[Callable]:
        return []

    def _get_network(self, device: str, data: dict | None) -> torch.nn.Module:
        return self.package.detector.to(torch.device(device))

    def run_inferer(self, data: dict[str, Any], convert_to_batch: bool = True, device: str = "cuda") -> dict:
        detector = self._get_network(device, data)
        image = torch.as_tensor(data[self.input_key]).float()[None].to(detector.device)
        with torch.inference_mode():
            data[self.output_label_key] = detector(image)[0].cpu()  # anomaly map [1, H, W]
        data[self.input_key] = image[0].cpu()
        return data

    def writer(self, data: dict[str, Any], extension=None, dtype=None) -> tuple[str, dict]:
        """Write the mask (1 = anomaly) and the overlay in a temporary folder; return the mask and the JSON."""
        package, maps = self.package, data[self.output_label_key]
        judged = package.judge(data[self.input_key][None], maps[None])
        folder = tempfile.mkdtemp(prefix="d2fad-label-")
        mask = os.path.join(folder, "anomaly_mask.png")
        Image.fromarray((maps[0] >= float(package.threshold["value"])).numpy().astype(np.uint8)).save(mask)
        heatmap = save_png(judged.overlays[0], os.path.join(folder, "heatmap.png"))
        result = {
            "score": float(judged.scores[0]),
            "anomalous": bool(judged.anomalous[0]),
            "threshold": package.threshold,
            "heatmap": heatmap,
            "references": len(package.support_files),
        }
        return mask, result
