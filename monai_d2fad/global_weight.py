"""Turn on this project's global extension for a trained D²4FAD checkpoint: choose its weight on the ``val`` splits
of the model's training tasks and write a checkpoint that scores with it (every app then does: predict, register,
export, the Deploy app, the Label task, the bundle's inference).

    monai-d2fad global-weight --checkpoint model.pt --data_dir tasks/ --output model_global.pt

The extension adds ``w`` times the image-level discrepancy of the teacher's features to the nearest reference to
every location of D²4FAD's map (``D2FAD``'s ``global_weight``); ``w = 0`` is the paper's method. The candidates are
``protocol.selection.GLOBAL_WEIGHTS``; never give it the task you will score (its ``val`` split would then choose).
"""

from __future__ import annotations

import argparse
import os

from monai_d2fad.checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint, trained_image_size
from monai_d2fad.data.evaluation import evaluation_sets
from monai_d2fad.data.tasks import discover_tasks
from monai_d2fad.networks.d2fad import D2FAD
from monai_d2fad.options import add_output_options, command_main
from monai_d2fad.outputs import check_overwrite
from monai_d2fad.protocol.selection import choose_global_weight

__all__ = ["add_arguments", "main", "run", "with_global_weight"]


def with_global_weight(
    model: D2FAD, data_dir: str, tasks: list[str] | None, shots: int, seeds: int, support_dir: str, image_size: int
) -> tuple[D2FAD, dict[float, float]]:
    """``model`` with the global weight of the best mean ``val`` AUROC over ``tasks`` of ``data_dir`` (all: None),
    each scored against ``seeds`` draws of ``shots`` references from its ``train/good`` (lists kept in
    ``support_dir``); returns it and the mean AUROC (%) of every candidate weight."""
    found = discover_tasks(data_dir)
    unknown = sorted(set(tasks or []) - set(found))
    if unknown:
        raise ValueError(f"no task {unknown} under {data_dir} (found {sorted(found)})")
    chosen = [found[name] for name in (tasks or sorted(found))]
    sets = evaluation_sets(chosen, "val", shots, seeds, support_dir)
    weight, means = choose_global_weight(model, sets, image_size)
    model.config["global_weight"] = weight
    return model, means


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="a trained D²4FAD checkpoint")
    p.add_argument("--data_dir", required=True, help="the model's training tasks (each with a labelled val split)")
    p.add_argument("--tasks", nargs="+", default=None, help="the tasks of --data_dir to use (default: all)")
    p.add_argument("--shots", type=int, default=4, help="references per val set")
    p.add_argument("--seeds", type=int, default=1, help="reference draws per task")
    p.add_argument("--support_dir", default=None, help="where the reference lists go (default: beside --output)")
    p.add_argument("--image_size", type=int, default=None, help="input size (default: the checkpoint's, else 128)")
    p.add_argument("--teacher_weights", default="config", help="teacher weights if not where the checkpoint says")
    add_output_options(p, "checkpoint to write, with the chosen weight")


def run(args: argparse.Namespace) -> str:
    """Choose the weight for ``args.checkpoint`` and write ``args.output``."""
    try:
        check_overwrite([args.output], args.overwrite)
        content = read_checkpoint(args.checkpoint)
        model = model_from_checkpoint(content, args.teacher_weights, args.checkpoint)
        size = args.image_size or trained_image_size(content) or 128
        support_dir = args.support_dir or os.path.join(os.path.dirname(os.path.abspath(args.output)), "support_lists")
        model, means = with_global_weight(model, args.data_dir, args.tasks, args.shots, args.seeds, support_dir, size)
        save_checkpoint(model, args.output, args.overwrite, size)
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}") from e
    print("mean val AUROC (%) by weight:", ", ".join(f"{w:g}: {v:.1f}" for w, v in means.items()))
    print(f"wrote {args.output}: global weight {model.config['global_weight']:g}")
    return args.output


def main(argv: list[str] | None = None) -> str:
    return command_main(__doc__.splitlines()[0], add_arguments, run, argv)


if __name__ == "__main__":
    main()
