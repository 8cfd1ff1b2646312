"""Train one model of the protocol (D²4FAD, DCAM) by running its bundle's training config with overrides."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from monai.bundle import ConfigParser
from torch import nn

from monai_d2fad.bundle_runs import BUNDLE_CONFIGS

__all__ = ["BUNDLE_TRAIN_CONFIG", "config_literal", "initial_network", "train_with_bundle", "training_scalars"]

logger = logging.getLogger(__name__)

BUNDLE_TRAIN_CONFIG = os.path.join(BUNDLE_CONFIGS, "train.json")


def train_with_bundle(overrides: dict, config_file: str = BUNDLE_TRAIN_CONFIG) -> tuple[str, float]:
    """Run the bundle config's ``fit`` (train, validate on the training tasks' ``val`` splits, keep the best).

    ``overrides`` set config ids (``output_dir``, ``test_task``, ``train_tasks``, ``shots``, ``epochs``, ...). A run
    that finished before (``training.json`` in ``output_dir``, written at the end) is not repeated; an interrupted
    one resumes from its last epoch checkpoint (MONAI also writes ``model_final.pt`` when a run fails, so that file
    does not mean finished). Returns the checkpoint to evaluate (the best on validation, else the final one) and
    the training time in seconds.
    """
    ckpt_dir = os.path.join(overrides["output_dir"], "models")
    best, final = os.path.join(ckpt_dir, "model.pt"), os.path.join(ckpt_dir, "model_final.pt")
    record = os.path.join(overrides["output_dir"], "training.json")
    if not os.path.isfile(record):
        parser = _bundle_config(overrides, config_file)
        logger.info("training with %s in %s", config_file, overrides["output_dir"])
        start = time.perf_counter()
        parser.get_parsed_content("fit")
        with open(record, "w", encoding="utf-8") as f:
            json.dump({"overrides": overrides, "seconds": round(time.perf_counter() - start, 1)}, f, indent=2)
    with open(record, encoding="utf-8") as f:
        seconds = json.load(f)["seconds"]
    return (best if os.path.isfile(best) else final), seconds


def initial_network(overrides: dict, config_file: str = BUNDLE_TRAIN_CONFIG) -> nn.Module:
    """The bundle config's ``network_def`` as its training starts (seeded by ``initialize``), never trained: the
    protocol's ``untrained`` ablation scores it to show what the training adds."""
    parser = _bundle_config(overrides, config_file)
    parser.get_parsed_content("initialize")
    return parser.get_parsed_content("network_def")


def _bundle_config(overrides: dict, config_file: str) -> ConfigParser:
    if not os.path.isfile(config_file):
        raise FileNotFoundError(
            f"bundle training config {config_file} not found: pass --config_file (the protocol trains with the "
            "bundles' configs/train.json under monai_d2fad/bundles/, installed with the package)"
        )
    parser = ConfigParser()
    parser.read_config(config_file)
    parser.update({k: config_literal(v) for k, v in overrides.items()})
    return parser


def config_literal(value):
    """``value`` as a bundle config reads it back unchanged: a string starting with MONAI's ``$`` (expression),
    ``@`` (reference) or ``%`` (macro), such as a task folder named ``$...``, becomes an expression of its string
    literal, which evaluates to the string itself and never runs it (``@`` written as ``\\x40``: MONAI resolves
    references inside expressions). Lists and dicts are converted item by item."""
    if isinstance(value, (list, tuple)):
        return [config_literal(v) for v in value]
    if isinstance(value, dict):
        return {k: config_literal(v) for k, v in value.items()}
    if isinstance(value, str) and value[:1] in ("$", "@", "%"):
        return "$" + repr(value).replace("@", "\\x40")
    return value


def training_scalars(output_dir: str, tags: tuple[str, ...] = ("tsd", "ssd", "val_auroc")) -> dict[str, list]:
    """``(step, value)`` pairs of the TensorBoard scalars ``tags`` that a training in ``output_dir`` logged."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found: dict[str, list] = {}
    for path in sorted(Path(output_dir, "tensorboard").glob("events.out.tfevents.*")):
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        for tag in set(tags) & set(events.Tags()["scalars"]):
            found.setdefault(tag, []).extend((e.step, e.value) for e in events.Scalars(tag))
    return {tag: sorted(values) for tag, values in found.items()}
