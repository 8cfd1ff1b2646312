"""Distillation training on MONAI's ``SupervisedTrainer``, through its extension points: plain batches of normal
images (``DistillationTrainer``: DCAM) and D²4FAD's episodes (``EpisodicTrainer``)."""

from __future__ import annotations

import logging
import os

import torch
from ignite.engine import Events
from ignite.handlers import Checkpoint
from monai.engines import SupervisedTrainer, Workflow
from monai.engines.utils import IterationEvents, PrepareBatch
from monai.handlers import CheckpointLoader, CheckpointSaver
from monai.utils import convert_to_tensor
from monai.utils.enums import CommonKeys as Keys

from monai_d2fad.checkpoint import latest_checkpoint, read_checkpoint

__all__ = [
    "DistillationTrainer",
    "EpisodeBatch",
    "EpisodicTrainer",
    "LossTermsHandler",
    "resume_from_latest",
    "scalar_output",
]

logger = logging.getLogger(__name__)


class EpisodeBatch(PrepareBatch):
    """MONAI's ``prepare_batch`` for episodes ``{"query", "support"}`` (images, or lists of cached teacher features,
    see ``data.TeacherFeatureCache``): the queries are the inputs, there is no target, and the references go to the
    network as its second input (``inferer(query, network, support)``)."""

    def __call__(self, batchdata: dict, device=None, non_blocking: bool = False, **kwargs):
        query, support = (convert_to_tensor(batchdata[k], device=device) for k in ("query", "support"))
        return query, None, (support,), {}


class LossTermsHandler:
    """Puts the loss terms of each iteration (the loss's ``last_terms``: ``tsd`` and ``ssd`` of
    ``DualDistillationLoss``, ``cd`` and ``kd`` of ``DCAMLoss``, ...) and the learning rate ``lr`` into
    ``engine.state.output``, beside MONAI's ``loss``, for the stats and TensorBoard handlers."""

    def attach(self, engine: SupervisedTrainer) -> None:
        # MONAI fires MODEL_COMPLETED at the end of each iteration, before any ITERATION_COMPLETED handler logs
        engine.add_event_handler(IterationEvents.MODEL_COMPLETED, self)

    def __call__(self, engine: SupervisedTrainer) -> None:
        terms = getattr(engine.loss_function, "last_terms", {})
        engine.state.output.update({k: float(v) for k, v in terms.items()})
        engine.state.output["lr"] = engine.optimizer.param_groups[0]["lr"]


LOSS_TERMS = ("tsd", "ssd", "cd", "kd", "decoder", "encoder", "student1", "student2", "mmu", "diversity")


def scalar_output(output: dict) -> dict[str, float]:
    """The scalars of a training iteration's output (``loss``, its terms, ``lr``), for ``StatsHandler`` and
    ``TensorBoardStatsHandler`` (``output_transform``); MONAI's output also holds the batch and the prediction."""
    keys = (Keys.LOSS, *LOSS_TERMS, "lr")
    return {k: float(torch.as_tensor(output[k]).detach()) for k in keys if k in output}


class DistillationTrainer(SupervisedTrainer):
    """MONAI's ``SupervisedTrainer`` for a target-free distillation loss on normal images (``{"image", ...}``
    batches, MONAI's default ``prepare_batch``): no decollation (outputs are scalars), a ``LossTermsHandler``, AMP on
    CUDA only. Other arguments are those of ``SupervisedTrainer``."""

    def __init__(self, *args, decollate: bool = False, **kwargs):
        super().__init__(*args, decollate=decollate, **kwargs)
        if self.amp and torch.device(self.state.device).type != "cuda":
            self.amp = False  # fp16 autocast with a GradScaler (created in run()) is for CUDA
        LossTermsHandler().attach(self)


class EpisodicTrainer(DistillationTrainer):
    """A ``DistillationTrainer`` for episodes ``{"query": [B,3,H,W], "support": [B,K,3,H,W]}``.

    Its defaults: ``prepare_batch=EpisodeBatch()`` (the references as the network's second input); the loss is a
    ``DualDistillationLoss`` (a tensor, as MONAI calls it). At every epoch start the episode dataset (if it has
    ``set_epoch``) re-draws its supports. Other arguments are those of ``SupervisedTrainer``.
    """

    def __init__(self, *args, prepare_batch: PrepareBatch | None = None, **kwargs):
        super().__init__(*args, prepare_batch=prepare_batch or EpisodeBatch(), **kwargs)
        dataset = getattr(self.data_loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            self.add_event_handler(Events.EPOCH_STARTED, lambda engine: dataset.set_epoch(engine.state.epoch - 1))


def resume_from_latest(
    trainer: SupervisedTrainer,
    ckpt_dir: str,
    load_dict: dict,
    map_location: str | torch.device | None = None,
    best_saver: CheckpointSaver | None = None,
    best_ckpt: str | None = None,
    evaluator: Workflow | None = None,
    initial_ckpt: str | None = None,
) -> str | None:
    """Continue from the newest readable epoch checkpoint in ``ckpt_dir`` (written by ``CheckpointSaver``), if any;
    else start from the model parts of ``initial_ckpt`` (fine-tuning a trained model, e.g. the bundle's
    ``models/model.pt``), if given.

    ``load_dict`` names what to restore (model parts, optimizer, ``trainer`` for its epoch count). Finished epochs
    are kept: training goes on with the next one; an unreadable newest checkpoint is skipped with a warning.
    ``best_saver``, the validator's key-metric ``CheckpointSaver`` (with ``key_metric_save_state=True``), gets back
    its record of the best score so far from ``best_ckpt``, so that a worse epoch after the restart does not
    replace the best model; ``evaluator`` gets it back too, so that its log does not call that epoch a new best.
    Returns the checkpoint used, or None.
    """
    path = latest_checkpoint(ckpt_dir)
    if path is None and initial_ckpt:
        logger.info("no epoch checkpoint in %s: fine-tuning %s", ckpt_dir, initial_ckpt)
        content = read_checkpoint(initial_ckpt, kind=None)  # weights only; an unreadable file is named
        parts = {k: v for k, v in load_dict.items() if k in content and k not in ("optimizer", "trainer")}
        Checkpoint.load_objects(parts, content)  # the model only: the optimiser and epoch count start afresh
        return initial_ckpt
    if path is None:
        logger.info("no epoch checkpoint in %s: training from scratch", ckpt_dir)
        return None
    logger.info("resuming from %s", path)
    CheckpointLoader(load_path=path, load_dict=load_dict, map_location=map_location).attach(trainer)
    if best_saver is not None and best_ckpt is not None and os.path.isfile(best_ckpt):
        # an unreadable file raises an error naming it
        state = read_checkpoint(best_ckpt, kind=None).get("checkpointer")
        if state is not None:
            best_saver.load_state_dict(state)
            if evaluator is not None and state.get("_saved"):
                evaluator.state.best_metric = max(priority for priority, _ in state["_saved"])
                evaluator.state.best_metric_epoch = 0  # reached before the restart; its epoch is not recorded
    return path
