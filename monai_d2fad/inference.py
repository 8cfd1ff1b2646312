"""D²4FAD as a plain network with one registered task's references baked in, for MONAI's engines and bundles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from monai_d2fad.checkpoint import ModelCard
from monai_d2fad.methods.d2fad import D2FADDetector
from monai_d2fad.task_package import choose_threshold, open_task

__all__ = ["AnomalyMapNetwork", "FewShotDetector", "ScriptedAnomalyMap"]


FewShotDetector = D2FADDetector
"""The name earlier releases gave the D²4FAD detector (``methods.D2FADDetector``); kept for their callers."""


class AnomalyMapNetwork(D2FADDetector):
    """A registered task as a plain network: ``forward(images) -> maps [B, 1, H, W]`` against its references.

    The form that MONAI's ``SupervisedEvaluator``, ``ckpt_export``, MONAI Deploy's bundle operator and MONAI Label
    call as ``network(images)``; it is built from ``task_package.open_task`` like every other app.

    TorchScript scripting (``torch.jit.script``, as MONAI's ``ckpt_export`` and the model zoo's checks call it) gives
    a ``ScriptedAnomalyMap``: the scorer traced at the task's image size, with the task's ``image_size``,
    ``modality`` and ``threshold`` as attributes of the saved module.

    Args:
        checkpoint: a ``monai_d2fad`` checkpoint file, or a task package (then ``support`` may be left out).
        support: a folder of normal reference images, one image, a support list file or a list of paths.
        modality, image_size: preprocessing of the references (as for the queries); ``image_size`` defaults to the
            size the checkpoint was trained at.
        teacher_weights: see ``checkpoint.load_checkpoint``.
        threshold: the decision threshold (``task.threshold``): a number, ``"loo"`` (calibrated on the references,
            leave-one-out; a task package keeps its own) or None (maps only).
    """

    def __init__(
        self,
        checkpoint: str,
        support: str | Sequence[str] | None = None,
        modality: str | None = None,
        image_size: int | None = None,
        teacher_weights: str | None = "config",
        threshold: float | str | None = None,
    ):
        calibrate = threshold is not None
        task = open_task(
            checkpoint,
            support,
            modality,
            image_size,
            threshold if calibrate and threshold != "loo" else None,
            teacher_weights=teacher_weights,
            calibrate=calibrate,
        )
        if not isinstance(task.detector, D2FADDetector):
            raise ValueError(f"{checkpoint} holds a {type(task.detector.model).__name__}: this network is D²4FAD's")
        super().__init__(task.detector.model, task.detector.image_score)
        self.model.requires_grad_(False)  # scoring only: no autograd graph when called as network(images)
        self.task = replace(task, detector=self)  # the registered task, with this network as its detector
        self.set_references(task.detector.references)

    def load_state_dict(self, state_dict: dict, strict: bool = True, assign: bool = False):
        """Also accepts a ``monai_d2fad`` checkpoint (``d2fad``/``student``/``l2w``), as MONAI's ``ckpt_export``
        passes the checkpoint file to the network; the references are read and encoded again with its weights, and a
        threshold calibrated on them is calibrated again."""
        if "d2fad" not in state_dict:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        ModelCard(self.model).load_state_dict(state_dict["d2fad"])
        self.model.student.load_state_dict(state_dict["student"])
        result = self.model.l2w.load_state_dict(state_dict["l2w"])
        self.set_support(self.task.load_images(self.task.support_files))
        if (self.task.threshold or {}).get("method") == "loo":
            self.task.threshold = choose_threshold(self.task, "loo")
        return result

    def __prepare_scriptable__(self) -> ScriptedAnomalyMap:
        """What ``torch.jit.script`` compiles instead of this module (the teachers cannot be scripted)."""
        size = self.task.image_size
        with torch.no_grad():
            traced = torch.jit.trace(self.eval(), torch.rand(2, 3, size, size, device=self.device), check_trace=False)
        threshold = float("nan") if self.task.threshold is None else float(self.task.threshold["value"])
        return ScriptedAnomalyMap(traced, size, self.task.modality or "", threshold)


class ScriptedAnomalyMap(torch.nn.Module):
    """A registered task's scorer for TorchScript: ``forward(image [B, 3, S, S]) -> map [B, 1, S, S]`` with the task's
    references baked in, and what a user of the saved file needs to know as its attributes: the ``image_size`` ``S``
    its images must be resized to, the ``modality`` preset that preprocessed them (``""``: none) and the decision
    ``threshold`` on the map's image score (NaN: not calibrated)."""

    def __init__(self, scorer: torch.nn.Module, image_size: int, modality: str, threshold: float):
        super().__init__()
        self.scorer = scorer
        # plain int, str and float attributes: TorchScript infers their types and keeps them in the saved module
        self.image_size, self.modality, self.threshold = int(image_size), str(modality), float(threshold)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.scorer(image)
