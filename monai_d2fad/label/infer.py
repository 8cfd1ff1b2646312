"""A MONAI Label infer task: anomaly score, decision, mask and heatmap of one image against a task's references."""

from __future__ import annotations

import base64
import io
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
from monai_d2fad.transforms.postprocessing import RestoreMapd
from monai_d2fad.visualize import save_png, threshold_overlay

__all__ = ["D2FADInferTask"]


class D2FADInferTask(BasicInferTask):
    """Scores the requested image with a task package (a trained model plus a task's normal references).

    The label returned is the anomalous region (the annotator's starting point): a PNG mask **at the image's size
    and orientation**, 1 where the anomaly map, brought back through the preset's crop and resize (``RestoreMapd``),
    reaches the task's threshold. The result JSON holds ``score``, ``anomalous``, ``threshold``, ``references`` and
    ``heatmap``: the colour overlay at the image's size as a ``data:image/png;base64`` URI, so that a client gets
    it with the answer (one scale per task, ``visualize.threshold_scale``). Only the mask is a file; MONAI Label's
    server deletes it once sent.

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
        self._loaded: tuple[float, RegisteredTask, ReadImaged] | None = None

    def _load(self) -> tuple[RegisteredTask, ReadImaged]:
        """The task package and its reader, loaded once and again whenever the package file changes."""
        path = self.get_path()
        if path is None:
            raise FileNotFoundError(f"task package {self.path} does not exist")
        mtime = os.path.getmtime(path)
        if self._loaded is None or self._loaded[0] != mtime:
            package = load_task_package(path)
            self._loaded = (mtime, package, ReadImaged(package.image_size, package.modality, keep_source=True))
        return self._loaded[1], self._loaded[2]

    @property
    def package(self) -> RegisteredTask:
        return self._load()[0]

    def pre_transforms(self, data: dict | None = None) -> Sequence[Callable]:
        return [self._load()[1]]

    def post_transforms(self, data: dict | None = None) -> Sequence[Callable]:
        return [RestoreMapd(self.output_label_key, self._load()[1].pipeline(None), image_key=self.input_key)]

    def _get_network(self, device: str, data: dict | None) -> torch.nn.Module:
        return self.package.detector.to(torch.device(device))

    def run_inferer(self, data: dict[str, Any], convert_to_batch: bool = True, device: str = "cuda") -> dict:
        """The anomaly map at the model's size, and the image's score and decision from it."""
        detector = self._get_network(device, data)
        image = data[self.input_key].as_tensor()[None]
        with torch.inference_mode():
            maps = detector(image.to(detector.device)).float().cpu()
        judged = self.package.judge(image, maps, overlays=False)
        data[self.output_label_key] = maps[0]
        data["score"], data["anomalous"] = float(judged.scores[0]), bool(judged.anomalous[0])
        return data

    def writer(self, data: dict[str, Any], extension=None, dtype=None) -> tuple[str, dict]:
        """Write the mask (1 = anomaly) to a temporary PNG; return it and the JSON with the heatmap inline."""
        package, anomaly_map = self.package, data[self.output_label_key]
        threshold = float(package.threshold["value"])
        handle, mask = tempfile.mkstemp(prefix="d2fad-mask-", suffix=".png")
        os.close(handle)
        Image.fromarray((anomaly_map[0] >= threshold).numpy().astype(np.uint8)).save(mask)
        source = data[f"{self.input_key}_source"].as_tensor()
        heatmap = io.BytesIO()
        save_png(threshold_overlay(source[None], anomaly_map[None], threshold)[0], heatmap)
        return mask, {
            "score": data["score"],
            "anomalous": data["anomalous"],
            "threshold": package.public_threshold,
            "heatmap": "data:image/png;base64," + base64.b64encode(heatmap.getvalue()).decode("ascii"),
            "references": len(package.support_files),
        }
