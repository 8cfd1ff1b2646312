"""How D²4FAD scores a task it never saw as its training goes on: held-out ``val`` AUROC against optimiser steps.

For each held-out task, a D²4FAD with the offline Lite0 teacher is trained on the other tasks' ``train/good``
episodes (the bundle's optimiser: Adam, betas (0.5, 0.999), batch 16, K = 4, teacher features cached) and, at the
given steps (0: the network as initialised), scored on the held-out task's ``val`` split against 3 draws of K = 4
references from its ``train/good`` (the draws of ``val_scoring_choices.py``; never ``test``). The protocol selects
its epoch on the training tasks' own ``val`` splits; this shows what that selection cannot see: whether training
helps on a new task.

    python scripts/val_training_steps.py --output docs/results/val_training_steps/default.json
    python scripts/val_training_steps.py --lr 1e-4 --steps 10 50 200 400 \\
        --output docs/results/val_training_steps/lr=1e-4.json
    python scripts/val_training_steps.py --augment --steps 10 50 200 400 \\
        --output docs/results/val_training_steps/augment.json
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from val_scoring_choices import SIZE, K, reference_draws

from monai_d2fad.data import EpisodeDataset, TeacherFeatureCache, discover_tasks
from monai_d2fad.data.images import read_images
from monai_d2fad.losses import DualDistillationLoss
from monai_d2fad.methods.d2fad import D2FADDetector, D2FADFeatures
from monai_d2fad.metrics import anomaly_metrics
from monai_d2fad.networks.d2fad import D2FAD

BATCH = 16


def student_features(model: D2FAD, teacher: list[torch.Tensor]) -> D2FADFeatures:
    """The distilled teacher scales and the student's features, from the teacher's four features."""
    distilled, deepest = model.split_levels(teacher)
    return D2FADFeatures(distilled, model.student(deepest))


class HeldOutVal:
    """A held-out task's ``val`` split and reference draws, with their teacher features computed once."""

    def __init__(self, model: D2FAD, task):
        items = task.items("val")
        self.labels = [i["label"] for i in items]
        images = read_images([i["image"] for i in items], task.modality, SIZE)
        with torch.no_grad():
            self.queries = [model.teacher(images[i : i + 64]) for i in range(0, len(images), 64)]
            self.references = [
                model.teacher(read_images(paths, task.modality, SIZE)) for paths in reference_draws(task)
            ]

    @torch.no_grad()
    def auroc(self, model: D2FAD) -> float:
        """Mean val AUROC (%) over the reference draws, with the paper's score (map mean, no global term)."""
        detector = D2FADDetector(model, global_weight=0.0)
        queries = [student_features(model, q) for q in self.queries]
        found = []
        for teacher in self.references:
            refs = detector.references_of(student_features(model, teacher))
            scores = torch.cat([detector.detect(q, refs, (SIZE, SIZE)).scores for q in queries])
            found.append(100 * anomaly_metrics(scores, self.labels)["auroc"])
        model.train()  # the detector put it in eval mode; the frozen teacher stays there
        return float(np.mean(found))


def run_task(args: argparse.Namespace, tasks: dict, name: str) -> list[dict]:
    torch.manual_seed(args.seed)
    model = D2FAD(teacher="efficientnet_lite0")
    val = HeldOutVal(model, tasks[name])
    cache = None if args.augment else TeacherFeatureCache(model.teacher, args.cache_dir, progress=False)
    train = [t for n, t in sorted(tasks.items()) if n != name]
    episodes = EpisodeDataset(
        train, shots=K, seed=args.seed, image_size=SIZE, augment=args.augment, teacher_features=cache
    )
    loader = torch.utils.data.DataLoader(episodes, batch_size=BATCH, shuffle=True)
    loss_fn = DualDistillationLoss(lam=args.lam, tsd=args.terms != "ssd", ssd=args.terms != "tsd")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=args.lr, betas=(0.5, 0.999))
    rows, step, epoch, start = [{"step": 0, "val_auroc": round(val.auroc(model), 2)}], 0, 0, time.perf_counter()
    print(name, rows[0], flush=True)
    while step < args.steps[-1]:
        episodes.set_epoch(epoch)
        epoch += 1
        for batch in loader:
            loss = loss_fn(model(batch["query"], batch["support"]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step in args.steps:
                terms = {k: round(float(v), 4) for k, v in loss_fn.last_terms.items()}
                rows.append({"step": step, "val_auroc": round(val.auroc(model), 2), **terms})
                print(name, rows[-1], f"{time.perf_counter() - start:.0f} s", flush=True)
            if step >= args.steps[-1]:
                break
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default="../shared/data/medfsad")
    p.add_argument("--tasks", nargs="+", default=None, help="held-out tasks (default: every task)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lam", type=float, default=100.0)
    p.add_argument("--terms", choices=("both", "tsd", "ssd"), default="both", help="the loss terms trained")
    p.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50, 100, 200, 400])
    p.add_argument("--seed", type=int, default=111)
    p.add_argument("--augment", action="store_true", help="the bundle's mild augmentation (no cache: the teacher runs)")
    p.add_argument("--cache_dir", default="runs/feature_cache", help="teacher features of the training images")
    p.add_argument("--output", required=True)
    args = p.parse_args()
    args.steps = sorted(args.steps)
    tasks = discover_tasks(args.data_dir)
    found = {name: run_task(args, tasks, name) for name in args.tasks or sorted(tasks)}
    settings = {k: getattr(args, k) for k in ("lr", "lam", "terms", "seed", "augment")}
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump({"settings": settings, "held_out": found}, f, indent=2)


if __name__ == "__main__":
    main()
