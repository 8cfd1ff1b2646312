"""Sample MONAI Label app: D²4FAD anomaly scores and heatmaps for the images of a studies folder.

Start it with ``monailabel start_server --app monai_d2fad/label/sample_app --studies IMAGES --conf task_package
TASK.pt`` (a task package from ``python -m monai_d2fad.task_package``; default: ``model/task.pt`` in this folder).
"""

from __future__ import annotations

import os

from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.tasks.infer_v2 import InferTask

import monai_d2fad
from monai_d2fad.label import D2FADInferTask


class D2FADApp(MONAILabelApp):
    """One infer task, ``d2fad_anomaly``: the anomaly score, decision and heatmap of the requested image."""

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]):
        self.task_package = conf.get("task_package", os.path.join(app_dir, "model", "task.pt"))
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="D2FAD few-shot anomaly detection",
            description="Anomaly score and heatmap against a task's normal references (D2FAD)",
            version=monai_d2fad.__version__,
        )

    def init_infers(self) -> dict[str, InferTask]:
        return {"d2fad_anomaly": D2FADInferTask(self.task_package)}
