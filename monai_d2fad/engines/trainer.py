"""Episodic dual-distillation training on MONAI's ``SupervisedTrainer``."""

from __future__ import annotations

import logging
import os
from contextlib import nullcontext

import torch
from ignite.engine import Events
from monai.engines import SupervisedTrainer, Workflow
from monai.engines.utils import IterationEvents
from monai.handlers import CheckpointLoader, CheckpointSaver
from monai.utils import convert_to_tensor
from monai.utils.enums import CommonKeys as Keys

from monai_d2fad.checkpoint import latest_checkpoint, read_checkpoint

__all__ = ["EpisodicTrainer", "resume_from_latest"]

logger = logging.getLogger(__name__)


class EpisodicTrainer(SupervisedTrainer):
    """Trains D²4FAD on batches ``{"query": [B,3,H,W], "support": [B,K,3,H,W]}`` (or the teacher's cached features).

    One iteration: ``inferer(query, network, support)`` (teacher and student on query and supports in one batch;
    MONAI's ``SimpleInferer`` by default), then ``loss_function(output)`` (a ``DualDistillationLoss``), then
    backward into the parameters that require gradients (student and learn-to-weight; the teacher is frozen).
    AMP applies on CUDA only. ``engine.state.output`` holds ``loss``, ``tsd``, ``ssd`` and the learning rate ``lr``,
    so that stats and TensorBoard handlers log all of them.
    At every epoch start the episode dataset (if it has ``set_epoch``) re-draws its supports.

    Arguments are those of ``SupervisedTrainer``; ``decollate`` defaults to False (outputs are scalars).
    """

    def __init__(self, *args, decollate: bool = False, **kwargs):
        super().__init__(*args, decollate=decollate, **kwargs)
        if self.amp and torch.device(self.state.device).type != "cuda":
            self.amp = False  # fp16 autocast with a GradScaler (created in run()) is for CUDA
        dataset = getattr(self.data_loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            self.add_event_handler(Events.EPOCH_STARTED, lambda engine: dataset.set_epoch(engine.state.epoch - 1))

    def _iteration(self, engine: EpisodicTrainer, batchdata: dict) -> dict:
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        # images, or lists of cached teacher features (see data.TeacherFeatureCache)
        query, support = (convert_to_tensor(batchdata[k], device=engine.state.device) for k in ("query", "support"))
        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        autocast = torch.autocast("cuda", **engine.amp_kwargs) if engine.amp else nullcontext()
        with autocast:
            output = engine.inferer(query, engine.network, support)
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            losses = engine.loss_function(output)
            engine.fire_event(IterationEvents.LOSS_COMPLETED)
        if engine.amp and engine.scaler is not None:
            engine.scaler.scale(losses["loss"]).backward()
            engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
            engine.scaler.step(engine.optimizer)
            engine.scaler.update()
        else:
            losses["loss"].backward()
            engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
            engine.optimizer.step()
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        engine.state.output = {
            Keys.LOSS: losses["loss"].detach(),
            "tsd": losses["tsd"],
            "ssd": losses["ssd"],
            "lr": engine.optimizer.param_groups[0]["lr"],
        }
        return engine.state.output


def resume_from_latest(
    trainer: SupervisedTrainer,
    ckpt_dir: str,
    load_dict: dict,
    map_location: str | torch.device | None = None,
    best_saver: CheckpointSaver | None = None,
    best_ckpt: str | None = None,
    evaluator: Workflow | None = None,
) -> str | None:
    """Continue from the newest readable epoch checkpoint in ``ckpt_dir`` (written by ``CheckpointSaver``), if any.

    ``load_dict`` names what to restore (model parts, optimizer, ``trainer`` for its epoch count). Finished epochs
    are kept: training goes on with the next one; an unreadable newest checkpoint is skipped with a warning.
    ``best_saver``, the validator's key-metric ``CheckpointSaver`` (with ``key_metric_save_state=True``), gets back
    its record of the best score so far from ``best_ckpt``, so that a worse epoch after the restart does not
    replace the best model; ``evaluator`` gets it back too, so that its log does not call that epoch a new best.
    Returns the checkpoint used, or None.
    """
    path = latest_checkpoint(ckpt_dir)
    if path is None:
        logger.info("no epoch checkpoint in %s: training from scratch", ckpt_dir)
        return None
    logger.info("resuming from %s", path)
    CheckpointLoader(load_path=path, load_dict=load_dict, map_location=map_location).attach(trainer)
    if best_saver is not None and best_ckpt is not None and os.path.isfile(best_ckpt):
        state = read_checkpoint(best_ckpt).get("checkpointer")  # an unreadable file raises an error naming it
        if state is not None:
            best_saver.load_state_dict(state)
            if evaluator is not None and state.get("_saved"):
                evaluator.state.best_metric = max(priority for priority, _ in state["_saved"])
                evaluator.state.best_metric_epoch = 0  # reached before the restart; its epoch is not recorded
    return path
