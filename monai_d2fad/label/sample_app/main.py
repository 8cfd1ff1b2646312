"""Sample MONAI Label app: D²4FAD anomaly scores, masks and heatmaps for the images of a studies folder.

Laid out like MONAI Label's sample apps: each task is a ``TaskConfig`` in ``lib/configs/``, chosen with
``--conf models <name>[,<name>]`` (default ``all``). See README.md in this folder for the commands.
"""

from __future__ import annotations

import logging

import lib.configs
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.config import TaskConfig
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.utils.others.class_utils import get_class_names

import monai_d2fad

logger = logging.getLogger(__name__)


def task_configs() -> dict[str, str]:
    """``{name: class path}`` of the ``TaskConfig`` classes in ``lib/configs``, named after their module."""
    return {c.split(".")[-2].lower(): c for c in sorted(get_class_names(lib.configs, "TaskConfig"))}


class D2FADApp(MONAILabelApp):
    """Serves the infer task of every chosen ``TaskConfig`` (by default ``d2fad_anomaly``)."""

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]):
        available = task_configs()
        chosen = [m.strip() for m in conf.get("models", "all").split(",") if m.strip()]
        unknown = [m for m in chosen if m != "all" and m not in available]
        if unknown or not chosen:
            raise ValueError(f"--conf models {conf.get('models')!r}: choose 'all' or among {sorted(available)}")
        self.models: dict[str, TaskConfig] = {}
        for name, path in available.items():
            if "all" in chosen or name in chosen:
                module, cls = path.rsplit(".", 1)
                self.models[name] = getattr(__import__(module, fromlist=[cls]), cls)()
                self.models[name].init(name, f"{app_dir}/model", conf, None)
                logger.info("+++ adding model %s => %s", name, path)
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="D2FAD few-shot anomaly detection",
            description="Anomaly score, mask and heatmap against a task's normal references (D2FAD)",
            version=monai_d2fad.__version__,
        )

    def init_infers(self) -> dict[str, InferTask]:
        infers: dict[str, InferTask] = {}
        for name, config in self.models.items():
            task = config.infer()
            infers.update(task if isinstance(task, dict) else {name: task})
        return infers
