"""The protocol's results: one CSV row per (method, test task, K, seed), resumable, and mean ± std tables.

``setting`` says what a method learnt from: ``cross-task`` (trained on other tasks, given the K references: D²4FAD),
``few-shot`` (fitted or trained on the K references alone) or ``full-shot`` (trained on the test task's
``train/good``; such rows have ``shots`` 0: no references are used at test time).
"""

from __future__ import annotations

import csv
import os
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence

from monai_d2fad.outputs import atomic_write

__all__ = ["COLUMNS", "SETTINGS", "ResultsFile", "cell_values", "results_table"]

SETTINGS = ("cross-task", "few-shot", "full-shot")
COLUMNS = (
    "method",
    "test_task",
    "shots",
    "seed",
    "evaluation",
    "setting",
    "train_shots",
    "auroc",
    "aupr",
    "f1_max",
    "n_normal",
    "n_abnormal",
    "train_seconds",
    "eval_seconds",
)


# the columns before ``setting`` existed; such files are upgraded when read (every method then was D²4FAD or a
# baseline fitted on the K references)
COLUMNS_V1 = tuple(c for c in COLUMNS if c != "setting")


def _setting_v1(method: str) -> str:
    return "cross-task" if method.startswith("D2FAD") else "few-shot"


def _key(row: dict) -> tuple[str, str, int, int, str]:
    return row["method"], row["test_task"], int(row["shots"]), int(row["seed"]), row["evaluation"]


class ResultsFile:
    """``results.csv`` of an output folder: rows already there are kept and their cells are not run again.

    A file written before the ``setting`` column existed is rewritten with it (every row kept, each row's setting
    told by its method).
    """

    def __init__(self, path: str):
        self.path = path
        self.rows: list[dict] = []
        if os.path.isfile(path):
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                columns = tuple(reader.fieldnames or ())
                if columns not in (COLUMNS, COLUMNS_V1):
                    raise ValueError(f"{path} has columns {reader.fieldnames}, expected {list(COLUMNS)}")
                self.rows = list(reader)
            if columns == COLUMNS_V1:
                self.rows = [{**r, "setting": _setting_v1(r["method"])} for r in self.rows]
                self._write(self.rows)
        self._done = {_key(r) for r in self.rows}

    def _write(self, rows: list[dict]) -> None:
        with atomic_write(self.path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows({c: r[c] for c in COLUMNS} for r in rows)

    def done(self, method: str, task: str, shots: int, seed: int, evaluation: str = "honest") -> bool:
        return (method, task, int(shots), int(seed), evaluation) in self._done

    def add(self, rows: Iterable[dict]) -> None:
        """Append rows (written at once, so that an interrupted run keeps every finished cell)."""
        rows = [{c: r[c] for c in COLUMNS} for r in rows]
        new = not os.path.isfile(self.path)
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            writer.writerows(rows)
        self.rows += [{k: str(v) for k, v in r.items()} for r in rows]
        self._done |= {_key(r) for r in rows}


def cell_values(
    rows: Sequence[dict], metric: str = "auroc", evaluation: str = "honest"
) -> dict[tuple[str, str, int], list[float]]:
    """The metric (in %) of every seed, by (method, test task, K), for one evaluation (``honest`` or ``official``)."""
    values = defaultdict(list)
    for r in rows:
        if r["evaluation"] == evaluation:
            values[(r["method"], r["test_task"], int(r["shots"]))].append(100 * float(r[metric]))
    return values


def results_table(
    rows: Sequence[dict],
    methods: Sequence[str],
    tasks: Sequence[str],
    shots: Sequence[int],
    metric: str = "auroc",
    labels: dict[str, str] | None = None,
    evaluation: str = "honest",
) -> str:
    """Markdown table laid out as the paper's Table 1: a row per method, a column per (task, K).

    Cells are mean ± std over the seeds, in %; the best mean of each column is bold; the last column is the mean
    over all cells of the row. ``labels`` renames methods for display. ``evaluation`` picks the rows.
    """
    values = cell_values(rows, metric, evaluation)
    columns = [(t, k) for t in tasks for k in shots]
    best = {
        c: max((statistics.mean(values[(m, *c)]) for m in methods if values[(m, *c)]), default=None) for c in columns
    }
    header = "| method | " + " | ".join(f"{t} {k}-shot" for t, k in columns) + " | mean |"
    lines = [header, "|---" * (len(columns) + 2) + "|"]
    for m in methods:
        cells, means = [], []
        for c in columns:
            v = values[(m, *c)]
            if not v:
                cells.append("–")
                continue
            mean, std = statistics.mean(v), statistics.pstdev(v)
            means.append(mean)
            text = f"{mean:.1f} ± {std:.1f}"
            cells.append(f"**{text}**" if mean == best[c] and len(methods) > 1 else text)
        overall = f"{statistics.mean(means):.1f}" if means and len(means) == len(columns) else "–"
        lines.append(f"| {(labels or {}).get(m, m)} | " + " | ".join(cells) + f" | {overall} |")
    return "\n".join(lines) + "\n"
