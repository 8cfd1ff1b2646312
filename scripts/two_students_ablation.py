"""The two-student model's ablations (the paper's Tab. 3) on the multi-class model: each student alone, Noisy-OR
against a plain sum, the last class token against all layers.

Each training trains one multi-class model with the bundle (``monai_d2fad/bundles/two_students``: all tasks'
``train/good``, at most ``--per_task`` images each, ``--epochs`` epochs, the best epoch on the tasks' ``val``
splits), then scores every task's ``test`` split with each scoring that fits it:

- trainings: ``noisy_or`` (both students, the paper's objective) and ``sum`` (``s_dec + s_enc``). A student trained
  alone is the ``sum`` training's student: the sum's gradients do not mix, so with the same seed each student's
  weights are those it would get alone (``TwoStudentsLoss(students=...)``; checked by
  ``tests/methods/test_two_students.py::test_the_sum_objective_trains_each_student_as_if_alone``), and "each
  student alone" is scored from the ``sum`` model;
- scorings: ``both`` students joined by Noisy-OR or by a sum, with the last class token or all layers'; the decoder
  alone; the encoder alone with the last token or all layers'.

Written per cell and task to ``<output>/two_students_ablation.csv`` (a rerun skips finished trainings); printed as
a table.

    python scripts/two_students_ablation.py --data_dir ../shared/data/medfsad --output runs/two_students_ablation64
"""

from __future__ import annotations

import argparse
import os

from monai_d2fad.checkpoint import load_model
from monai_d2fad.data import discover_tasks
from monai_d2fad.methods import TwoStudentsDetector
from monai_d2fad.protocol.grid import GridFile, add_grid_arguments, auroc_cells, score_tasks, test_splits, train_cell

# training name -> (objective, students trained)
TRAININGS = {"noisy_or": ("noisy_or", "both"), "sum": ("sum", "both")}
# scoring: (students scored, aggregation, class tokens)
BOTH = [("both", "noisy_or", "last"), ("both", "sum", "last"), ("both", "noisy_or", "all")]
ENCODER = [("encoder", "noisy_or", "last"), ("encoder", "noisy_or", "all")]
DECODER = [("decoder", "noisy_or", "last")]
SCORINGS = BOTH + DECODER + ENCODER
COLUMNS = ("training", "students", "aggregation", "class_tokens", "task", "auroc", "aupr", "train_seconds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_grid_arguments(parser, "runs/two_students_ablation64")
    args = parser.parse_args()
    grid = GridFile(os.path.join(args.output, "two_students_ablation.csv"), COLUMNS, ("training",))
    done = grid.done()
    tasks = discover_tasks(args.data_dir)
    tests = test_splits(tasks, args.image_size)
    for training, (objective, students) in TRAININGS.items():
        if (training,) in done:
            continue
        settings = {"objective": objective, "students": students}
        checkpoint, seconds = train_cell("two_students", args, list(tasks), training, **settings)
        model = load_model(checkpoint, "two_students")
        rows = []
        for scored, aggregation, tokens in SCORINGS:
            detector = TwoStudentsDetector(model, students=scored, aggregation=aggregation, class_tokens=tokens)
            cell = {"training": training, "students": scored, "aggregation": aggregation, "class_tokens": tokens}
            for name, metrics in score_tasks(detector, tests).items():
                rows.append(cell | {"task": name, "train_seconds": seconds} | metrics)
        grid.append(rows)
    print_table(grid, sorted(tasks))


def print_table(grid: GridFile, tasks: list[str]) -> None:
    """The ablations as a markdown table: AUROC (%) per task and its mean, training time."""
    rows = grid.rows()
    print("| trained | scored | aggregation | class tokens | " + " | ".join(tasks) + " | mean | train s |")
    print("|---" * (len(tasks) + 6) + "|")
    names = ("training", "students", "aggregation", "class_tokens")
    for key in dict.fromkeys(tuple(r[k] for k in names) for r in rows):
        training, students, aggregation, tokens = key
        cell = {r["task"]: r for r in rows if tuple(r[k] for k in names) == key}
        joined = aggregation if students == "both" else "–"
        used = tokens if students != "decoder" else "–"
        seconds = float(next(iter(cell.values()))["train_seconds"])
        print(f"| {training} | {students} | {joined} | {used} | {auroc_cells(cell, tasks)} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
