"""DCAM's ablation grid (the paper's: attention placement x loss) on the multi-class model, and its inference cost.

Each of the 9 cells trains one multi-class DCAM with the bundle (``monai_d2fad/bundles/dcam``: all tasks'
``train/good``, at most ``--per_task`` images each, ``--epochs`` epochs, the best epoch on the tasks' ``val``
splits), then scores every task's ``test`` split. Attention ``none`` is STFPM; the losses are channel-wise cosine
(CD), spatial KL divergence (KD), or both (the paper's best with channel attention). Written per cell and task to
``<output>/dcam_ablation.csv`` (a rerun skips finished cells): test AUROC, training seconds, and the plain student's
inference throughput (queries/s at batch 16), which is the same whatever the attention since the blocks are not
run at inference. Printed: the grid as a table. ``--latency`` then times each cell's trained detector alone on one
fixed batch (median of repeated runs; run it on an otherwise idle machine): the inference cost of every attention
placement against STFPM's (``none``).

    python scripts/dcam_ablation.py --data_dir ../shared/data/medfsad --output runs/dcam_ablation64
    python scripts/dcam_ablation.py --output runs/dcam_ablation64 --latency
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time

import torch

from monai_d2fad.checkpoint import load_dcam
from monai_d2fad.data import ImageDataset, discover_tasks
from monai_d2fad.methods import DCAMDetector
from monai_d2fad.metrics import anomaly_metrics
from monai_d2fad.protocol.training import DCAM_TRAIN_CONFIG, train_with_bundle

PLACEMENTS = ("none", "channel", "spatial")
LOSSES = {"CD": ("channel", "none"), "KD": ("none", "spatial"), "CD+KD": ("channel", "spatial")}
COLUMNS = ("attention", "loss", "task", "auroc", "aupr", "train_seconds", "queries_per_second")


def score_task(detector: DCAMDetector, images: ImageDataset, batch: int = 16) -> tuple[dict, float]:
    """Metrics of one task's test split and the queries scored per second."""
    scores, start = [], time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            scores.append(
                detector.score(torch.stack([images[j]["image"] for j in range(i, min(i + batch, len(images)))]))[0]
            )
    seconds = time.perf_counter() - start
    labels = torch.tensor([it["label"] for it in images.items])
    return anomaly_metrics(torch.cat(scores), labels), len(images) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default="../shared/data/medfsad")
    parser.add_argument("--output", default="runs/dcam_ablation64")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--per_task", type=int, default=250, help="training images per task")
    parser.add_argument(
        "--image_size", type=int, default=64, help="64 px keeps the 9 trainings within ~20 min on 2 cores"
    )
    parser.add_argument("--teacher", default="efficientnet_lite0")
    parser.add_argument("--latency", action="store_true", help="time the trained cells' inference and stop")
    args = parser.parse_args()
    if args.latency:
        print_latency(args.output, args.image_size)
        return
    path = os.path.join(args.output, "dcam_ablation.csv")
    done = set()
    if os.path.isfile(path):
        with open(path, newline="", encoding="utf-8") as f:
            done = {(r["attention"], r["loss"]) for r in csv.DictReader(f)}
    tasks = discover_tasks(args.data_dir)
    tests = {name: ImageDataset(task.items("test"), args.image_size, progress=False) for name, task in tasks.items()}
    for attention in PLACEMENTS:
        for loss, (cd, kd) in LOSSES.items():
            if (attention, loss) in done:
                continue
            overrides = {
                "dataset_dir": os.path.abspath(args.data_dir),
                "train_tasks": sorted(tasks),
                "epochs": args.epochs,
                "max_train_per_task": args.per_task,
                "teacher": args.teacher,
                "image_size": args.image_size,
                "attention": attention,
                "cd": cd,
                "kd": kd,
                "output_dir": os.path.join(args.output, f"{attention}_{loss}"),
            }
            checkpoint, seconds = train_with_bundle(overrides, DCAM_TRAIN_CONFIG)
            detector = DCAMDetector(load_dcam(checkpoint))
            rows = []
            for name, images in tests.items():
                metrics, speed = score_task(detector, images)
                row = {"attention": attention, "loss": loss, "task": name, "train_seconds": seconds}
                rows.append(
                    row | {k: round(metrics[k], 4) for k in ("auroc", "aupr")} | {"queries_per_second": round(speed, 1)}
                )
            new = not os.path.isfile(path)
            with open(path, "a", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=COLUMNS)
                if new:
                    writer.writeheader()
                writer.writerows(rows)
    print_table(path, sorted(tasks))


def print_latency(output: str, image_size: int, batch: int = 16, repeats: int = 30) -> None:
    """Median milliseconds per batch of ``batch`` queries of every trained cell (the same input for all)."""
    images = torch.rand(batch, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    print("| attention | loss | ms per batch of 16 (median) | student encoder parameters (no attention) |")
    print("|---|---|---|---|")
    for attention in PLACEMENTS:
        for loss in LOSSES:
            path = os.path.join(output, f"{attention}_{loss}", "models", "model.pt")
            if not os.path.isfile(path):
                continue
            detector = DCAMDetector(load_dcam(path))
            times = []
            with torch.inference_mode():
                detector.score(images)  # warm-up
                for _ in range(repeats):
                    start = time.perf_counter()
                    detector.score(images)
                    times.append(1000 * (time.perf_counter() - start))
            used = sum(p.numel() for p in detector.model.student.encoder.parameters())
            print(f"| {attention} | {loss} | {statistics.median(times):.1f} | {used:,} |")


def print_table(path: str, tasks: list[str]) -> None:
    """The grid as a markdown table: AUROC (%) per task and its mean, training time, throughput."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    print("| attention | loss | " + " | ".join(tasks) + " | mean | train s | queries/s |")
    print("|---" * (len(tasks) + 5) + "|")
    for attention in PLACEMENTS:
        for loss in LOSSES:
            cell = {r["task"]: r for r in rows if r["attention"] == attention and r["loss"] == loss}
            if not cell:
                continue
            aurocs = [100 * float(cell[t]["auroc"]) for t in tasks]
            speed = statistics.mean(float(r["queries_per_second"]) for r in cell.values())
            name = "none (STFPM)" if attention == "none" else attention
            seconds = float(next(iter(cell.values()))["train_seconds"])
            print(
                f"| {name} | {loss} | "
                + " | ".join(f"{a:.1f}" for a in aurocs)
                + f" | {statistics.mean(aurocs):.1f} | {seconds:.0f} | {speed:.0f} |"
            )


if __name__ == "__main__":
    main()
