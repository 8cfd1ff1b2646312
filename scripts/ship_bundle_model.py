"""Put a trained D²4FAD into the bundle as ``models/model.pt`` and measure it with the bundle's own ``evaluating``.

    python scripts/ship_bundle_model.py --checkpoint runs/shipped_lite2/models/model.pt \\
        --data_dir ../shared/data/medfsad --support_dir runs/medfsad_lite2_256/support_lists \\
        --output docs/results/shipped_model.json --overwrite

The model (trained on the normals of every task with ``configs/bundle/shipped_lite2.json``) is written with the
image size on its card, then every task's ``test`` split is scored against the protocol's saved reference lists
(K = 2, 4, 8, 5 draws) through ``monai-d2fad evaluate``, reading every setting from the shipped checkpoint. The
training curves (from the run's TensorBoard logs) go to the bundle's ``docs/training_curves.png``. These
tasks' normals were seen in training, so the numbers say how the shipped model does on its own tasks; RESULTS.md
holds the leave-one-task-out numbers (tasks never seen).

``--evaluate_only`` measures ``--checkpoint`` the same way without shipping it, e.g. the shipped model with this
project's global extension (``monai-d2fad global-weight``, its weight chosen on the four tasks' ``val`` splits):

    python scripts/ship_bundle_model.py --checkpoint runs/global_weight_demo/model_global.pt --evaluate_only \
        --support_dir runs/medfsad_v5/support_lists --output docs/results/shipped_model_global.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

from monai_d2fad.bundle_runs import BUNDLE_CONFIGS, add_evaluate_arguments, evaluate
from monai_d2fad.checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint, trained_image_size
from monai_d2fad.data import discover_tasks
from monai_d2fad.protocol.plots import training_curves
from monai_d2fad.protocol.training import training_scalars

SHIPPED = os.path.join(os.path.dirname(BUNDLE_CONFIGS), "models", "model.pt")


def ship(checkpoint: str, image_size: int | None, overwrite: bool) -> str:
    """Write ``checkpoint`` as the bundle's model (with its image size; by default the one on its card) and its
    training curves; returns its path."""
    content = read_checkpoint(checkpoint)
    image_size = image_size or trained_image_size(content)
    if image_size is None:
        raise ValueError(f"{checkpoint} records no image size: pass --image_size")
    os.makedirs(os.path.dirname(SHIPPED), exist_ok=True)
    save_checkpoint(model_from_checkpoint(content, source=checkpoint), SHIPPED, overwrite, image_size=image_size)
    print(f"wrote {SHIPPED} ({os.path.getsize(SHIPPED) / 1e6:.1f} MB)")
    run_dir = os.path.dirname(os.path.dirname(os.path.abspath(checkpoint)))  # <output_dir>/models/model.pt
    curves = os.path.join(os.path.dirname(BUNDLE_CONFIGS), "docs", "training_curves.png")
    print(f"wrote {training_curves({'shipped': training_scalars(run_dir)}, curves, 'model')}")
    return SHIPPED


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="the trained model (the best on the tasks' val splits)")
    p.add_argument("--data_dir", default="../shared/data/medfsad")
    p.add_argument("--support_dir", required=True, help="the protocol's saved support lists")
    p.add_argument("--output", required=True, help="JSON file of the results")
    p.add_argument("--image_size", type=int, default=None, help="the size it was trained at (default: its card's)")
    p.add_argument("--shots", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--overwrite", action="store_true", help="replace the bundle's models/model.pt")
    p.add_argument("--evaluate_only", action="store_true", help="measure --checkpoint as it is; ship nothing")
    args = p.parse_args()

    evaluated = args.checkpoint if args.evaluate_only else ship(args.checkpoint, args.image_size, args.overwrite)
    results = {"checkpoint": args.checkpoint, "support_dir": args.support_dir, "tasks": {}}
    evaluate_args = argparse.ArgumentParser()  # monai-d2fad evaluate's options
    add_evaluate_arguments(evaluate_args)
    for task in sorted(discover_tasks(args.data_dir)):
        for k in args.shots:
            with tempfile.TemporaryDirectory() as out:
                settings = [f"test_task={task}", f"shots={k}", "support_seeds=5", f"support_dir={args.support_dir}"]
                paths = ["--output_dir", out, "--dataset_dir", args.data_dir, "--ckpt_path", evaluated]
                workflow = evaluate(evaluate_args.parse_args([*paths, "--set", *settings, "num_workers=0"]))
                result = workflow.parser.get_parsed_content("test#evaluator").results
            results["tasks"].setdefault(task, {})[f"{k}-shot"] = result
            print(f"{task} {k}-shot: AUROC {result['mean']['auroc']:.4f}")
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
