"""The ``d2fad_anomaly`` task: a task package's anomaly score, mask and heatmap for the requested image."""

from __future__ import annotations

import os
from typing import Any

from monailabel.interfaces.config import TaskConfig
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.train import TrainTask

from monai_d2fad.label import D2FADInferTask


class D2FADAnomaly(TaskConfig):
    """Infer only: a task package is registered with ``monai-d2fad register`` from normal references, not trained
    from labels. ``--conf task_package PATH`` (default ``model/task.pt`` in the app folder)."""

    def init(self, name: str, model_dir: str, conf: dict[str, str], planner: Any, **kwargs):
        super().init(name, model_dir, conf, planner, **kwargs)
        self.path = conf.get("task_package", os.path.join(model_dir, "task.pt"))

    def infer(self) -> InferTask:
        return D2FADInferTask(self.path)

    def trainer(self) -> TrainTask | None:
        return None
