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
import os
import statistics
import time

import torch

from monai_d2fad.checkpoint import load_dcam
from monai_d2fad.data import discover_tasks
from monai_d2fad.methods import DCAMDetector
from monai_d2fad.protocol.grid import GridFile, add_grid_arguments, auroc_cells, score_tasks, test_splits, train_cell

PLACEMENTS = ("none", "channel", "spatial")
LOSSES = {"CD": ("channel", "none"), "KD": ("none", "spatial"), "CD+KD": ("channel", "spatial")}
COLUMNS = ("attention", "loss", "task", "auroc", "aupr", "train_seconds", "queries_per_second")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_grid_arguments(parser, "runs/dcam_ablation64")
    parser.add_argument("--latency", action="store_true", help="time the trained cells' inference and stop")
    args = parser.parse_args()
    if args.latency:
        print_latency(args.output, args.image_size)
        return
    grid = GridFile(os.path.join(args.output, "dcam_ablation.csv"), COLUMNS, ("attention", "loss"))
    done = grid.done()
    tasks = discover_tasks(args.data_dir)
    tests = test_splits(tasks, args.image_size)
    for attention in PLACEMENTS:
        for loss, (cd, kd) in LOSSES.items():
            if (attention, loss) in done:
                continue
            settings = {"attention": attention, "cd": cd, "kd": kd}
            checkpoint, seconds = train_cell("dcam", args, list(tasks), f"{attention}_{loss}", **settings)
            scored = score_tasks(DCAMDetector(load_dcam(checkpoint)), tests)
            cell = {"attention": attention, "loss": loss, "train_seconds": seconds}
            grid.append([cell | {"task": name} | metrics for name, metrics in scored.items()])
    print_table(grid, sorted(tasks))


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


def print_table(grid: GridFile, tasks: list[str]) -> None:
    """The grid as a markdown table: AUROC (%) per task and its mean, training time, throughput."""
    rows = grid.rows()
    print("| attention | loss | " + " | ".join(tasks) + " | mean | train s | queries/s |")
    print("|---" * (len(tasks) + 5) + "|")
    for attention in PLACEMENTS:
        for loss in LOSSES:
            cell = {r["task"]: r for r in rows if r["attention"] == attention and r["loss"] == loss}
            if not cell:
                continue
            speed = statistics.mean(float(r["queries_per_second"]) for r in cell.values())
            name = "none (STFPM)" if attention == "none" else attention
            seconds = float(next(iter(cell.values()))["train_seconds"])
            print(f"| {name} | {loss} | {auroc_cells(cell, tasks)} | {seconds:.0f} | {speed:.0f} |")


if __name__ == "__main__":
    main()
