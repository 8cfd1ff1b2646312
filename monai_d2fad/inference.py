"""D²4FAD as a plain network with one registered task's references baked in, for MONAI's engines and bundles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from monai_d2fad.checkpoint import ModelCard
from monai_d2fad.methods.d2fad import D2FADDetector
from monai_d2fad.task_package import open_task

__all__ = ["AnomalyMapNetwork", "FewShotDetector"]


FewShotDetector = D2FADDetector
"""The name earlier releases gave the D²4FAD detector (``methods.D2FADDetector``); kept for their callers."""


class AnomalyMapNetwork(D2FADDetector):
    """A registered task as a plain network: ``forward(images) -> maps [B, 1, H, W]`` against its references.

    The form that MONAI's ``SupervisedEvaluator``, ``ckpt_export``, MONAI Deploy's bundle operator and MONAI Label
    call as ``network(images)``; it is built from ``task_package.open_task`` like every other app.

    Args:
        checkpoint: a ``monai_d2fad`` checkpoint file, or a task package (then ``support`` may be left out).
        support: a folder of normal reference images, one image, a support list file or a list of paths.
        modality, image_size: preprocessing of the references (as for the queries).
        teacher_weights: see ``checkpoint.load_checkpoint``.
    """

    def __init__(
        self,
        checkpoint: str,
        support: str | Sequence[str] | None = None,
        modality: str | None = None,
        image_size: int | None = None,
        teacher_weights: str | None = "config",
    ):
        task = open_task(checkpoint, support, modality, image_size, teacher_weights=teacher_weights, calibrate=False)
        if not isinstance(task.detector, D2FADDetector):
            raise ValueError(f"{checkpoint} holds a {type(task.detector.model).__name__}: this network is D²4FAD's")
        super().__init__(task.detector.model, task.detector.image_score)
        self.model.requires_grad_(False)  # scoring only: no autograd graph when called as network(images)
        self.task = replace(task, detector=self)  # the registered task, with this network as its detector
        self.set_references(task.detector.references)

    def load_state_dict(self, state_dict: dict, strict: bool = True, assign: bool = False):
        """Also accepts a ``monai_d2fad`` checkpoint (``d2fad``/``student``/``l2w``), as MONAI's ``ckpt_export``
        passes the checkpoint file to the network; the references are read and encoded again with its weights."""
        if "d2fad" not in state_dict:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        ModelCard(self.model).load_state_dict(state_dict["d2fad"])
        self.model.student.load_state_dict(state_dict["student"])
        result = self.model.l2w.load_state_dict(state_dict["l2w"])
        self.set_support(self.task.load_images(self.task.support_files))
        return result
