"""``train`` and ``evaluate``: the MONAI Bundle workflows of a method (``monai_d2fad/bundles/<bundle>``, package
data; ``bundles/`` of a source checkout links to it) from the command line.

    monai-d2fad train --output_dir runs/demo --overlay demo
    monai-d2fad train --output_dir runs/cxr --dataset_dir ../shared/data/medfsad --set test_task=chest_xray epochs=8
    monai-d2fad evaluate --output_dir runs/cxr --set test_task=chest_xray
    monai-d2fad train --method dcam --output_dir runs/dcam --dataset_dir ../shared/data/medfsad  # multi-class
    monai-d2fad train --method two_students --output_dir runs/two --dataset_dir ../shared/data/medfsad
    monai-d2fad train --method pdd --output_dir runs/pdd --dataset_dir ../shared/data/medfsad/chest_xray  # one task

The same as ``python -m monai.bundle run training|evaluating --config_file [...]`` with the bundle's configs:
``--overlay`` adds configs after ``train.json`` (``demo``, ``paper`` or a file), ``--set`` overrides config ids.
"""

from __future__ import annotations

import argparse
import json
import os
from importlib import resources

from monai.bundle import ConfigWorkflow

from monai_d2fad.options import command_main

__all__ = [
    "BUNDLE_CONFIGS",
    "METHOD_CONFIGS",
    "add_evaluate_arguments",
    "add_train_arguments",
    "evaluate",
    "main",
    "train",
]

BUNDLE_CONFIGS = str(resources.files("monai_d2fad") / "bundles" / "d2fad_fewshot" / "configs")  # package data
# method -> the folder of its bundle configs (train.json, evaluate.json)
METHOD_CONFIGS = {
    "d2fad": BUNDLE_CONFIGS,
    **{m: str(resources.files("monai_d2fad") / "bundles" / m / "configs") for m in ("dcam", "two_students", "pdd")},
}


def _override(text: str) -> tuple[str, object]:
    """``key=value``, the value read as JSON when it is JSON (numbers, lists, true/null), else as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set takes key=value, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _config_file(name: str) -> str:
    """A bundle config by name (``demo``, ``paper``, ...) or a path."""
    path = name if os.path.isfile(name) else os.path.join(BUNDLE_CONFIGS, f"{name}.json")
    if not os.path.isfile(path):
        raise argparse.ArgumentTypeError(f"{name}: neither a config file nor one of the bundle's configs")
    return path


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """``train``'s options (``evaluate`` adds ``--ckpt_path``)."""
    p.add_argument("--method", choices=sorted(METHOD_CONFIGS), default="d2fad", help="the method's bundle configs")
    p.add_argument("--output_dir", required=True, help="checkpoints, TensorBoard logs, support lists, test results")
    p.add_argument("--dataset_dir", default=None, help="folder of task folders (default: the bundle's)")
    p.add_argument(
        "--overlay", nargs="*", type=_config_file, default=[], help="configs on top of train.json: demo, paper, a file"
    )
    p.add_argument("--set", nargs="*", type=_override, default=[], metavar="KEY=VALUE", help="config overrides")


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    add_train_arguments(p)
    p.add_argument("--ckpt_path", default=None, help="checkpoint to evaluate (default: <output_dir>/models/model.pt)")


def _run(args: argparse.Namespace, extra: list[str], run_id: str) -> ConfigWorkflow:
    overrides = {"output_dir": args.output_dir, **dict(args.set)}
    for key in ("dataset_dir", "ckpt_path"):
        if getattr(args, key, None) is not None:
            overrides[key] = getattr(args, key)
    configs = METHOD_CONFIGS[getattr(args, "method", "d2fad")]
    config = [os.path.join(configs, "train.json"), *args.overlay, *(os.path.join(configs, name) for name in extra)]
    workflow = ConfigWorkflow(
        config_file=config,
        workflow_type=None,
        run_id=run_id,
        logging_file=os.path.join(BUNDLE_CONFIGS, "logging.conf"),
        **overrides,
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    return workflow


def train(args: argparse.Namespace) -> ConfigWorkflow:
    """Run the bundle's ``training`` (train, validate on the training tasks, keep the best, evaluate the test task)."""
    return _run(args, [], "training")


def evaluate(args: argparse.Namespace) -> ConfigWorkflow:
    """Run the bundle's ``evaluating`` on the test task's test split."""
    return _run(args, ["evaluate.json"], "evaluating")


def main(argv: list[str] | None = None) -> ConfigWorkflow:
    return command_main(__doc__, add_train_arguments, train, argv)
