"""``python -m monai_d2fad.protocol``: the leave-one-task-out benchmark from the command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from monai_d2fad.options import command_main
from monai_d2fad.outputs import OutputLockedError
from monai_d2fad.protocol.config import METHODS, ProtocolConfig
from monai_d2fad.protocol.evaluation import EVALUATIONS
from monai_d2fad.protocol.runner import run_protocol
from monai_d2fad.protocol.training import BUNDLE_TRAIN_CONFIG
from monai_d2fad.protocol.variants import ABLATIONS


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ints(values: Sequence[str]) -> list[int]:
    return [int(v) for text in values for v in _names(text)]


DESCRIPTION = (
    "Leave-one-task-out few-shot benchmark: D²4FAD and baselines on the same tasks, splits and reference lists; "
    "results.csv (one row per method, task, K, seed), results.md, figures/. Rerunning with the same --output "
    "resumes: finished cells are skipped."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``protocol``'s options."""
    p.add_argument("--data_dir", required=True, help="folder of task folders (<task>/train, val, test)")
    p.add_argument("--output", required=True, help="results folder (created; reused to resume)")
    p.add_argument("--test_tasks", type=_names, default=None, help="comma list of held-out tasks (default: all)")
    p.add_argument("--train_tasks", type=_names, default=None, help="comma list (default: all other tasks)")
    p.add_argument("--shots", nargs="+", default=["2", "4", "8"], help="K values, e.g. --shots 2 4 8")
    p.add_argument("--seeds", type=int, default=5, help="number of reference draws per K (default 5)")
    p.add_argument("--epochs", type=int, default=70, help="D²4FAD training epochs (default 70, the paper's)")
    p.add_argument("--teacher", default="wide_resnet50_2", help="teacher network (efficientnet_lite0 offline)")
    p.add_argument("--teacher_weights", default="imagenet", help="'imagenet' or a state-dict file")
    p.add_argument("--image_size", type=int, default=128, help="input size")
    p.add_argument("--max_train_per_task", type=int, default=None, help="cap on training queries per task")
    p.add_argument("--checkpoint", default=None, help="evaluate this trained D²4FAD instead of training")
    p.add_argument(
        "--train_shots", type=int, default=None, help="train one model with this K for all K (default: one per K)"
    )
    p.add_argument("--methods", type=_names, default=list(METHODS), help=f"comma list from {','.join(METHODS)}")
    p.add_argument(
        "--ablation", type=_names, default=[], help=f"comma list of D²4FAD ablations: {','.join(sorted(ABLATIONS))}"
    )
    p.add_argument("--batch_size", type=int, default=16, help="training and scoring batch")
    p.add_argument("--seed", type=int, default=111, help="training seed")
    p.add_argument("--rd4ad_steps", type=int, default=200, help="training steps of the per-task RD4AD baseline")
    p.add_argument(
        "--evaluation",
        nargs="+",
        default=["honest"],
        choices=EVALUATIONS,
        help="honest: per-image scores (the headline); official: also the official code's batch-blurred, "
        "label-sorted, max scoring, as rows marked 'official' (biased: a diagnostic)",
    )
    p.add_argument("--examples", type=int, default=4, help="normal and abnormal images per task in the map figure")
    p.add_argument("--no_plots", action="store_true", help="skip the figures")
    p.add_argument("--config_file", default=BUNDLE_TRAIN_CONFIG, help="bundle training config to train with")


def run(args: argparse.Namespace) -> int:
    """Run (or resume) the protocol; bad settings end the command with a message."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    try:
        config = _config(args)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}") from e
    try:
        run_protocol(config)
    except (FileNotFoundError, FileExistsError, KeyError, ValueError, OutputLockedError) as e:
        raise SystemExit(f"error: {e.args[0] if isinstance(e, KeyError) else e}") from e
    print(f"results: {config.output}/results.csv, {config.output}/results.md")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return command_main(DESCRIPTION, add_arguments, run, argv, prog="python -m monai_d2fad.protocol")


def _config(args: argparse.Namespace) -> ProtocolConfig:
    return ProtocolConfig(
        data_dir=args.data_dir,
        output=args.output,
        test_tasks=args.test_tasks,
        train_tasks=args.train_tasks,
        shots=_ints(args.shots),
        seeds=args.seeds,
        epochs=args.epochs,
        teacher=args.teacher,
        teacher_weights=None if args.teacher_weights == "none" else args.teacher_weights,
        image_size=args.image_size,
        max_train_per_task=args.max_train_per_task,
        checkpoint=args.checkpoint,
        train_shots=args.train_shots,
        methods=args.methods,
        ablations=args.ablation,
        batch_size=args.batch_size,
        seed=args.seed,
        rd4ad_steps=args.rd4ad_steps,
        evaluations=args.evaluation,
        examples=args.examples,
        plots=not args.no_plots,
        config_file=args.config_file,
    )


if __name__ == "__main__":
    sys.exit(main())
