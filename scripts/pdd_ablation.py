"""PDD's ablations (what its abstract implies): one teacher against two, the diversity loss on and off, student 1,
student 2 or both.

PDD is a single-task method, so each training trains one model per task on that task's ``train/good`` with the
bundle (``monai_d2fad/bundles/pdd``: at most ``--per_task`` images, ``--epochs`` epochs, the best epoch on the task's
``val`` split) and scores the task's ``test`` split with each scoring:

- trainings: ``two_teachers`` (the defaults: Lite0 local and Lite2 global teachers, diversity weight 0.1),
  ``one_teacher`` (the local teacher alone) and ``no_diversity`` (diversity weight 0);
- scorings: both students (their mean map, the method), student 1 alone, student 2 alone.

Written per training, scoring and task to ``<output>/pdd_ablation.csv`` (a rerun skips finished cells); printed as
a table.

    python scripts/pdd_ablation.py --data_dir ../shared/data/medfsad --output runs/pdd_ablation64
"""

from __future__ import annotations

import argparse
import os

from monai_d2fad.checkpoint import load_model
from monai_d2fad.data import discover_tasks
from monai_d2fad.losses import PDD_STUDENTS
from monai_d2fad.methods import PDDDetector
from monai_d2fad.protocol.grid import GridFile, add_grid_arguments, auroc_cells, score_tasks, test_splits, train_cell

# training name -> bundle settings
TRAININGS = {
    "two_teachers": {},
    "one_teacher": {"global_teacher": None},
    "no_diversity": {"diversity_weight": 0.0},
}
COLUMNS = ("training", "students", "task", "auroc", "aupr", "train_seconds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_grid_arguments(parser, "runs/pdd_ablation64")
    args = parser.parse_args()
    grid = GridFile(os.path.join(args.output, "pdd_ablation.csv"), COLUMNS, ("training", "task"))
    done = grid.done()
    tasks = discover_tasks(args.data_dir)
    tests = test_splits(tasks, args.image_size)
    for training, settings in TRAININGS.items():
        for name in sorted(tasks):
            if (training, name) in done:
                continue
            checkpoint, seconds = train_cell("pdd", args, [name], os.path.join(training, name), **settings)
            model = load_model(checkpoint, "pdd")
            rows = []
            for students in PDD_STUDENTS:
                metrics = score_tasks(PDDDetector(model, students=students), {name: tests[name]})[name]
                rows.append(
                    {"training": training, "students": students, "task": name, "train_seconds": seconds} | metrics
                )
            grid.append(rows)
    print_table(grid, sorted(tasks))


def print_table(grid: GridFile, tasks: list[str]) -> None:
    """The ablations as a markdown table: AUROC (%) per task and its mean, training time summed over the tasks."""
    rows = grid.rows()
    print("| trained | scored | " + " | ".join(tasks) + " | mean | train s |")
    print("|---" * (len(tasks) + 4) + "|")
    for key in dict.fromkeys((r["training"], r["students"]) for r in rows):
        cell = {r["task"]: r for r in rows if (r["training"], r["students"]) == key}
        if len(cell) < len(tasks):
            continue
        seconds = sum(float(r["train_seconds"]) for r in cell.values())
        print(f"| {key[0]} | {key[1]} | {auroc_cells(cell, tasks)} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
