"""``results.md``: the comparison table, the official-style gap, a table per ablation, the figures."""

from __future__ import annotations

import logging
import os
import statistics
from collections.abc import Sequence

from monai_d2fad.data.tasks import Task
from monai_d2fad.protocol.config import (
    BASELINES,
    DCAM_METHOD,
    GLOBAL_METHOD,
    PDD_METHOD,
    STUDENT_METHODS,
    TWO_STUDENTS_METHOD,
    ProtocolConfig,
)
from monai_d2fad.protocol.figures import make_figures
from monai_d2fad.protocol.results import ResultsFile, cell_values, results_table
from monai_d2fad.protocol.variants import ABLATIONS, variant_name

__all__ = ["METHOD_LABELS", "describe_training", "evaluation_gap_table", "full_shot_table", "write_report"]

logger = logging.getLogger(__name__)


def write_report(config: ProtocolConfig, results: ResultsFile, tasks: dict[str, Task]) -> str:
    """``results.md`` of everything in ``results.csv``: the comparison table, a table per ablation with a row per
    variant that was run, and the figures (if ``config.plots``). ``tasks`` are the data's tasks (column order)."""
    base = {"teacher": config.teacher}
    present = {r["method"] for r in results.rows}
    order = [t for t in tasks if any(r["test_task"] == t for r in results.rows)]
    few_shot_students = [method for method, _ in STUDENT_METHODS.values()]
    main = [m for m in ("D2FAD", GLOBAL_METHOD, *BASELINES.values(), *few_shot_students) if m in present]
    parts = [
        "# Protocol results\n",
        f"Image AUROC (%), mean ± std over {config.seeds} reference draws; honest evaluation (per-image scores).\n",
    ]
    if "D2FAD" in present:
        extension = (
            f" {GLOBAL_METHOD} is this project's extension, not the paper's method." if GLOBAL_METHOD in present else ""
        )
        parts.append(f"D²4FAD: {describe_training(config)}.{extension}\n")
    for key, (method, multi) in STUDENT_METHODS.items():
        if method in present:
            trained = "full-shot and multi-class students" if multi else "full-shot students"
            parts.append(
                f"{method}: few-shot students trained {getattr(config, f'{key}_steps')} steps on each reference "
                f"list; {trained} {getattr(config, f'{key}_epochs')} epochs on train/good "
                f"(docs/methods/{STUDENT_DOCS[key]}).\n"
            )
    parts.append(results_table(results.rows, main, order, config.shots, labels=METHOD_LABELS))
    if any(r["setting"] == "full-shot" for r in results.rows):
        parts += [
            "\n## Full-shot (trained on the test task's train/good; no references at test time)\n",
            full_shot_table(results.rows, [m for pair in STUDENT_METHODS.values() for m in pair if m], order),
        ]
    if any(r["evaluation"] == "official" for r in results.rows):
        parts += [
            "\n## The official code's evaluation (biased; a diagnostic)\n",
            evaluation_gap_table([r for r in results.rows if r["setting"] != "full-shot"], main),
        ]
    for ablation, variants in ABLATIONS.items():
        labels = {n: label for label, o in variants.items() if (n := variant_name(o, base)) in present}
        if not present & (set(labels) - {"D2FAD"}):
            continue
        columns = [
            t
            for t in order
            if any(r["test_task"] == t and r["method"] in labels.keys() - {"D2FAD"} for r in results.rows)
        ]
        parts += [
            f"\n## Ablation: {ablation}\n",
            results_table(results.rows, list(labels), columns, config.shots, labels=labels),
        ]
    if config.plots:
        parts.append("\n## Figures\n")
        figures = make_figures(config, {t: tasks[t] for t in order}, main, results.rows)
        parts += [f"![{os.path.basename(p)}]({os.path.relpath(p, config.output)})\n" for p in figures]
    path = os.path.join(config.output, "results.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    logger.info("wrote %s", path)
    return path


METHOD_LABELS = {
    GLOBAL_METHOD: f"{GLOBAL_METHOD} (extension)",
    DCAM_METHOD: f"{DCAM_METHOD} (few-shot: trained on the K references)",
    TWO_STUDENTS_METHOD: f"{TWO_STUDENTS_METHOD} (few-shot, CNN adaptation: trained on the K references)",
    PDD_METHOD: f"{PDD_METHOD} (few-shot, offline teachers: trained on the K references)",
}
STUDENT_DOCS = {"dcam": "DCAM.md", "two_students": "TWO_STUDENTS.md", "pdd": "PDD.md"}


def full_shot_table(rows: Sequence[dict], methods: Sequence[str], tasks: Sequence[str]) -> str:
    """Honest image AUROC (%) of the full-shot rows: a row per method, a column per task, and their mean."""
    values = cell_values([r for r in rows if r["setting"] == "full-shot"])
    lines = ["| method | " + " | ".join(tasks) + " | mean |", "|---" * (len(tasks) + 2) + "|"]
    for m in methods:
        cells = [statistics.mean(values[(m, t, 0)]) if values[(m, t, 0)] else None for t in tasks]
        if all(c is None for c in cells):
            continue
        known = [c for c in cells if c is not None]
        mean = f"{statistics.mean(known):.1f}" if len(known) == len(cells) else "–"
        lines.append(f"| {m} | " + " | ".join("–" if c is None else f"{c:.1f}" for c in cells) + f" | {mean} |")
    return "\n".join(lines) + "\n"


def describe_training(config: ProtocolConfig) -> str:
    """What the D²4FAD rows were made with, as run: a given checkpoint, or the training the protocol ran."""
    if config.checkpoint:
        return f"the given checkpoint {os.path.basename(config.checkpoint)} (not trained by this run)"
    models = "one model per K" if config.train_shots is None else f"one model trained with K = {config.train_shots}"
    cap = f", at most {config.max_train_per_task} images per task" if config.max_train_per_task else ""
    return f"{models}, {config.epochs} epochs{cap}, teacher {config.teacher}, {config.image_size} px"


def evaluation_gap_table(rows: Sequence[dict], methods: Sequence[str]) -> str:
    """Per method, the mean AUROC over the cells that have both evaluations: honest, official-style, difference."""
    honest, official = cell_values(rows), cell_values(rows, evaluation="official")
    lines = ["| method | honest | official-style | official − honest |", "|---|---|---|---|"]
    for m in methods:
        cells = [c for c in official if c[0] == m and honest.get(c)]
        if not cells:
            continue
        h = statistics.mean(statistics.mean(honest[c]) for c in cells)
        o = statistics.mean(statistics.mean(official[c]) for c in cells)
        lines.append(f"| {METHOD_LABELS.get(m, m)} | {h:.1f} | {o:.1f} | {o - h:+.1f} |")
    return "\n".join(lines) + "\n"
