"""Leave-one-task-out benchmark: train D²4FAD per held-out task, score it and the baselines on shared references.

For each test task the runner trains on the other tasks (model selection on their ``val`` splits, never on the
test task), then scores the test split against every saved K-shot reference list (K x seeds). Each cell
(method, task, K, seed) becomes a row of ``results.csv``; finished cells are skipped when the run is repeated.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
from monai.utils import look_up_option

from monai_d2fad.checkpoint import load_checkpoint
from monai_d2fad.data.images import ImageDataset
from monai_d2fad.data.tasks import Task, leave_one_task_out, load_task, task_dirs
from monai_d2fad.engines.evaluator import EvaluationSet, evaluation_sets
from monai_d2fad.methods import D2FADMethod, FewShotMethod, ImageNearestNeighbour, PatchCore, RD4ADPerTask
from monai_d2fad.networks.d2fad import D2FAD
from monai_d2fad.outputs import OutputLock
from monai_d2fad.protocol import plots
from monai_d2fad.protocol.evaluation import EVALUATIONS, SetScores, read_images, score_sets
from monai_d2fad.protocol.results import ResultsFile, cell_values, results_table
from monai_d2fad.protocol.selection import choose_global_weight
from monai_d2fad.protocol.training import BUNDLE_TRAIN_CONFIG, train_d2fad, training_scalars
from monai_d2fad.protocol.variants import ABLATIONS, training_overrides, variant_name

__all__ = ["BASELINES", "ProtocolConfig", "load_tasks", "run_protocol"]

logger = logging.getLogger(__name__)

BASELINES = {"patchcore": "PatchCore", "rd4ad": "RD4AD", "image_nn": "ImageNN"}
# this project's extension of D²4FAD (not the paper's method): map score plus a weighted image-level discrepancy
GLOBAL_METHOD = "D2FAD+global"
METHODS = ("d2fad", "d2fad_global", *BASELINES)
# settings that change what a cell's number means: a rerun in the same output folder must keep them
RUN_SETTINGS = (
    "data_dir",
    "epochs",
    "teacher",
    "teacher_weights",
    "image_size",
    "max_train_per_task",
    "train_shots",
    "checkpoint",
    "batch_size",
    "seed",
    "rd4ad_steps",
)


@dataclass
class ProtocolConfig:
    """Everything a protocol run depends on (written to ``config.json`` in ``output``)."""

    data_dir: str
    output: str
    test_tasks: list[str] | None = None
    train_tasks: list[str] | None = None
    shots: list[int] = field(default_factory=lambda: [2, 4, 8])
    seeds: int = 5
    epochs: int = 70
    teacher: str = "wide_resnet50_2"
    teacher_weights: str | None = "imagenet"
    image_size: int = 128
    max_train_per_task: int | None = None
    checkpoint: str | None = None
    train_shots: int | None = None
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    ablations: list[str] = field(default_factory=list)
    batch_size: int = 16
    seed: int = 111
    rd4ad_steps: int = 200
    evaluations: list[str] = field(default_factory=lambda: ["honest"])
    examples: int = 4
    plots: bool = True
    config_file: str = BUNDLE_TRAIN_CONFIG

    def __post_init__(self):
        self.data_dir = os.path.abspath(self.data_dir)  # the same data however it was spelled, on resume
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {list(METHODS)}")
        unknown = [a for a in self.ablations if a not in ABLATIONS]
        if unknown:
            raise ValueError(f"unknown ablations {unknown}; choose from {sorted(ABLATIONS)}")
        if (self.ablations or "d2fad_global" in self.methods) and "d2fad" not in self.methods:
            raise ValueError("ablations and d2fad_global are D²4FAD variants: keep 'd2fad' in the methods")
        for evaluation in self.evaluations:
            look_up_option(evaluation, EVALUATIONS)
        if not self.shots or min(self.shots) < 1 or self.seeds < 1:
            raise ValueError(f"need K >= 1 and at least one seed, got shots={self.shots}, seeds={self.seeds}")
        if self.checkpoint and not os.path.isfile(self.checkpoint):
            raise FileNotFoundError(f"--checkpoint {self.checkpoint} does not exist")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name).strip("_")


def _check_settings(config: ProtocolConfig) -> None:
    """Write ``config.json``; refuse to add cells to an output folder made with other settings."""
    os.makedirs(config.output, exist_ok=True)
    path = os.path.join(config.output, "config.json")
    mine = asdict(config)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            before = json.load(f)
        changed = {k: (before.get(k), mine[k]) for k in RUN_SETTINGS if before.get(k) != mine[k]}
        if changed:
            raise ValueError(
                f"{config.output} holds results made with other settings {changed} (before, now): "
                "use another --output, or the same settings to resume"
            )
    with open(path, "w", encoding="utf-8") as f:
        json.dump(mine, f, indent=2)


def d2fad_variants(config: ProtocolConfig) -> dict[str, dict]:
    """D²4FAD itself plus the variants of the selected ablations, by method name."""
    base = {"teacher": config.teacher}
    variants = {"D2FAD": {}}
    for ablation in config.ablations:
        for overrides in ABLATIONS[ablation].values():
            variants.setdefault(variant_name(overrides, base), overrides)
    if config.checkpoint:
        needs_training = [n for n, o in variants.items() if training_overrides(o, base)]
        if needs_training:
            raise ValueError(f"--checkpoint evaluates one trained model; {needs_training} need training of their own")
    return variants


class _TaskRun:
    """The cells of one held-out task: its test images (decoded once), reference sets and example images."""

    def __init__(self, config: ProtocolConfig, tasks: dict[str, Task], name: str, results: ResultsFile):
        self.config, self.results = config, results
        self.train_tasks, self.task = leave_one_task_out(tasks, name, config.train_tasks)
        self.support_dir = os.path.join(config.output, "support_lists")
        self.sets = evaluation_sets([self.task], "test", config.shots, config.seeds, self.support_dir)
        self._images: ImageDataset | None = None

    @property
    def images(self) -> ImageDataset:
        if self._images is None:
            self._images = ImageDataset(self.task.items("test"), self.config.image_size, self.task.modality)
        return self._images

    def examples(self) -> list[int]:
        """The first ``config.examples`` normal and abnormal test images (sorted by path), kept for figures."""
        items = self.task.items("test")
        order = sorted(range(len(items)), key=lambda i: items[i]["image"])
        normal = [i for i in order if items[i]["label"] == 0][: self.config.examples]
        abnormal = [i for i in order if items[i]["label"] == 1][: self.config.examples]
        return normal + abnormal

    def pending(self, method: str, shots: Sequence[int]) -> list[EvaluationSet]:
        """The sets of ``shots`` that miss a row of ``method`` for one of the configured evaluations."""
        return [
            s
            for s in self.sets
            if _shots(s) in shots
            and not all(
                self.results.done(method, self.task.name, _shots(s), _seed(s), e)
                for e in _evaluations(self.config, method)
            )
        ]

    def evaluate(
        self,
        name: str,
        method: FewShotMethod,
        sets: list[EvaluationSet],
        train_shots: dict[int, int | str],
        train_seconds: float = 0.0,
    ) -> None:
        """Score ``sets``, save each set's scores for the figures, append the rows.

        ``train_shots`` gives, per test K, the K the scoring model was trained with (none for training-free methods).
        """
        start = time.perf_counter()
        official = "official" in _evaluations(self.config, name)
        scored = score_sets(
            method,
            self.images,
            sets,
            self.config.image_size,
            self.config.batch_size,
            self.examples(),
            official=official,
        )
        seconds = (time.perf_counter() - start) / len(sets)
        rows = []
        for s in sets:
            result = scored[s.name]
            torch.save(_score_record(result, self.images, s), self._score_file(name, s))
            for evaluation in _evaluations(self.config, name):
                if self.results.done(name, self.task.name, _shots(s), _seed(s), evaluation):
                    continue
                labels = result.labels if evaluation == "honest" else result.labels[result.official_index]
                rows.append(
                    {
                        "method": name,
                        "test_task": self.task.name,
                        "shots": _shots(s),
                        "seed": _seed(s),
                        "evaluation": evaluation,
                        "train_shots": train_shots.get(_shots(s), ""),
                        **{k: round(v, 6) for k, v in result.metrics(evaluation).items()},
                        "n_normal": int((labels == 0).sum()),
                        "n_abnormal": int((labels == 1).sum()),
                        "train_seconds": train_seconds,
                        "eval_seconds": round(seconds, 2),
                    }
                )
                logger.info("%s %s (%s): AUROC %.4f", name, s.name, evaluation, rows[-1]["auroc"])
        self.results.add(rows)

    def _score_file(self, method: str, s: EvaluationSet) -> str:
        path = score_file(self.config.output, method, self.task.name, _shots(s), _seed(s))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path


def _evaluations(config: ProtocolConfig, method: str) -> list[str]:
    """The evaluations of ``method``: the official-style scoring reads only the maps, so the global extension, whose
    score is not its map's, has honest rows only."""
    return [e for e in config.evaluations if e == "honest" or method != GLOBAL_METHOD]


def score_file(output: str, method: str, task: str, shots: int, seed: int) -> str:
    return os.path.join(output, "scores", _slug(method), task, f"{shots}-shot_seed{seed}.pt")


def read_score_file(path: str) -> dict:
    """A score file this runner wrote: tensors, numbers and strings only (``weights_only``), so a tampered file in a
    results folder cannot run code; anything else is refused with an error naming it."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for foreign objects, RuntimeError for truncated files
        raise ValueError(f"{path} is not a score file of this project (refused: {type(e).__name__}); remove it") from e


def _score_record(result: SetScores, images: ImageDataset, s: EvaluationSet) -> dict:
    examples = sorted(result.example_maps)
    return {
        "scores": result.scores,
        "labels": result.labels,
        "map_range": result.map_range,
        "examples": [images.items[i]["image"] for i in examples],
        "example_labels": [int(result.labels[i]) for i in examples],
        "example_scores": [float(result.scores[i]) for i in examples],
        "example_maps": [result.example_maps[i] for i in examples],
        "example_weights": [result.example_weights[i] for i in examples if i in result.example_weights],
        "support": s.support,
    }


def _shots(s: EvaluationSet) -> int:
    return len(s.support)


def _seed(s: EvaluationSet) -> int:
    return int(s.name.rsplit("seed", 1)[1])


def _run_d2fad(config: ProtocolConfig, run: _TaskRun, name: str, overrides: dict) -> None:
    """Train (or reuse) the variant ``name`` per group of K and score it; the default model also serves the
    global-score extension, whose weight is chosen on the training tasks' ``val`` splits."""
    base = {"teacher": config.teacher}
    with_global = name == "D2FAD" and "d2fad_global" in config.methods
    groups = [[k] for k in config.shots] if config.train_shots is None else [list(config.shots)]
    for shots in groups:
        sets = run.pending(name, shots)
        global_sets = run.pending(GLOBAL_METHOD, shots) if with_global else []
        if not sets and not global_sets:
            continue
        train_k = config.train_shots or shots[0]
        if config.checkpoint:
            checkpoint, seconds, train_shots = config.checkpoint, 0.0, {k: "checkpoint" for k in shots}
        else:
            checkpoint, seconds = train_d2fad(
                _bundle_overrides(config, run, train_k, base, overrides), config.config_file
            )
            train_shots = {k: train_k for k in shots}
        model = load_checkpoint(checkpoint)
        if sets:
            run.evaluate(name, D2FADMethod(model, overrides.get("image_score"), _device()), sets, train_shots, seconds)
        if global_sets:
            weight = _global_weight(config, run, model, train_k)
            method = D2FADMethod(model, None, _device(), global_weight=weight)
            run.evaluate(GLOBAL_METHOD, method, global_sets, train_shots, seconds)


def _global_weight(config: ProtocolConfig, run: _TaskRun, model: D2FAD, train_k: int) -> float:
    """The global-score weight for ``run``'s model, chosen on the training tasks' ``val`` splits (K = ``train_k``,
    the lists the bundle validated with); kept in ``global_weights.json`` so that a rerun reuses it."""
    path = os.path.join(config.output, "global_weights.json")
    chosen = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            chosen = json.load(f)
    key = f"{run.task.name}/train_{train_k}-shot"
    if key not in chosen:
        sets = evaluation_sets(run.train_tasks, "val", train_k, 1, run.support_dir)
        weight, means = choose_global_weight(D2FADMethod(model, None, _device()), sets, config.image_size)
        chosen[key] = {"weight": weight, "val_auroc": {str(w): round(v, 2) for w, v in means.items()}}
        logger.info(
            "%s: global weight %s chosen on val (mean AUROC by weight %s)", key, weight, chosen[key]["val_auroc"]
        )
        with open(path, "w", encoding="utf-8") as f:
            json.dump(chosen, f, indent=2)
    return float(chosen[key]["weight"])


def _bundle_overrides(config: ProtocolConfig, run: _TaskRun, train_k: int, base: dict, overrides: dict) -> dict:
    trained = training_overrides(overrides, base)
    variant = _slug(",".join(f"{k}={v}" for k, v in trained.items())) or "default"
    return {
        "dataset_dir": config.data_dir,
        "test_task": run.task.name,
        "train_tasks": [t.name for t in run.train_tasks],
        "shots": train_k,
        "epochs": config.epochs,
        "teacher": config.teacher,
        "teacher_weights": config.teacher_weights,
        "image_size": config.image_size,
        "max_train_per_task": config.max_train_per_task,
        "batch_size": config.batch_size,
        "seed": config.seed,
        "num_workers": 0,
        "support_dir": run.support_dir,
        "output_dir": os.path.join(config.output, "models", variant, run.task.name, f"train_{train_k}-shot"),
        **trained,
    }


def _baseline(config: ProtocolConfig, key: str) -> FewShotMethod:
    teacher = {"teacher": config.teacher, "teacher_weights": config.teacher_weights, "device": _device()}
    if key == "patchcore":
        return PatchCore(**teacher)
    if key == "rd4ad":
        return RD4ADPerTask(**teacher, steps=config.rd4ad_steps, seed=config.seed)
    return ImageNearestNeighbour(**teacher)


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_protocol(config: ProtocolConfig) -> ResultsFile:
    """Run every pending cell, then write ``results.md`` and the figures. Returns the results."""
    with OutputLock(config.output):
        return _run_protocol(config)


def _run_protocol(config: ProtocolConfig) -> ResultsFile:
    _check_settings(config)
    tasks = load_tasks(config)
    test_tasks = config.test_tasks or sorted(tasks)
    results = ResultsFile(os.path.join(config.output, "results.csv"))
    variants = d2fad_variants(config) if "d2fad" in config.methods else {}
    baselines = {}
    for name in test_tasks:
        run = _TaskRun(config, tasks, name, results)
        for method, overrides in variants.items():
            _run_d2fad(config, run, method, overrides)
        for key in (m for m in config.methods if m in BASELINES):
            sets = run.pending(BASELINES[key], config.shots)
            if sets:
                baselines.setdefault(key, _baseline(config, key))
                train_shots = {k: k for k in config.shots} if key == "rd4ad" else {}  # RD4AD trains on the K
                run.evaluate(BASELINES[key], baselines[key], sets, train_shots)
    write_report(config, results, tasks)
    return results


def load_tasks(config: ProtocolConfig) -> dict[str, Task]:
    """The tasks the run uses, read and checked before anything runs: every test task has a ``test`` split and
    enough normal references for the largest K; every training task has a ``val`` split (model selection) when
    D²4FAD is trained. A broken task folder that the run does not use is left alone."""
    found = task_dirs(config.data_dir)
    unknown = [t for t in (config.test_tasks or []) + (config.train_tasks or []) if t not in found]
    if unknown:
        raise ValueError(f"tasks {unknown} not found in {config.data_dir}; tasks are {sorted(found)}")
    used = set(found) if config.test_tasks is None or config.train_tasks is None else set()
    used |= set(config.test_tasks or []) | set(config.train_tasks or [])
    tasks = {name: load_task(path) for name, path in found.items() if name in used}
    trains = "d2fad" in config.methods and not config.checkpoint
    for name in config.test_tasks or sorted(tasks):
        train_tasks, task = leave_one_task_out(tasks, name, config.train_tasks)
        task.items("test")
        task.require_normal(max(config.shots), "train")
        for other in train_tasks if trains else []:
            other.items("val")
    return tasks


def write_report(config: ProtocolConfig, results: ResultsFile, tasks: dict[str, Task]) -> str:
    """``results.md`` of everything in ``results.csv``: the comparison table, a table per ablation with a row per
    variant that was run, and the figures (if ``config.plots``). ``tasks`` are the data's tasks (column order)."""
    base = {"teacher": config.teacher}
    present = {r["method"] for r in results.rows}
    order = [t for t in tasks if any(r["test_task"] == t for r in results.rows)]
    main = [m for m in ("D2FAD", GLOBAL_METHOD, *BASELINES.values()) if m in present]
    parts = [
        "# Protocol results\n",
        f"Image AUROC (%), mean ± std over {config.seeds} reference draws; honest evaluation (per-image scores).\n",
        f"D²4FAD: {describe_training(config)}. {GLOBAL_METHOD} is this project's extension, not the paper's method.\n",
        results_table(results.rows, main, order, config.shots, labels=METHOD_LABELS),
    ]
    if any(r["evaluation"] == "official" for r in results.rows):
        parts += [
            "\n## The official code's evaluation (biased; a diagnostic)\n",
            evaluation_gap_table(results.rows, main),
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


METHOD_LABELS = {GLOBAL_METHOD: f"{GLOBAL_METHOD} (extension)"}


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


def make_figures(
    config: ProtocolConfig, tasks: dict[str, Task], methods: Sequence[str], rows: Sequence[dict]
) -> list[str]:
    """AUROC against K from the results ``rows``; then score distributions, ROC curves, map overlays and support
    weights at one K (4 if run), reference draw 0."""
    folder = os.path.join(config.output, "figures")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "auroc_by_shots.png")
    paths = [plots.auroc_by_shots(cell_values(rows), methods, list(tasks), path)]
    trained = {
        f"{t} ({os.path.basename(d)})": training_scalars(d)
        for t in tasks
        for d in sorted(glob.glob(os.path.join(config.output, "models", "default", t, "train_*")))
    }
    if any(trained.values()):
        paths.append(plots.training_curves(trained, os.path.join(folder, "training_curves.png")))
    k = 4 if 4 in config.shots else config.shots[0]
    records = {}
    for t in tasks:
        files = {m: score_file(config.output, m, t, k, 0) for m in methods}
        found = {m: read_score_file(f) for m, f in files.items() if os.path.isfile(f)}
        if found:
            records[t] = found
    if not records:
        return paths
    scores = {t: {m: (r["scores"], r["labels"]) for m, r in by_method.items()} for t, by_method in records.items()}
    paths += [
        plots.score_distributions(scores, os.path.join(folder, f"score_distributions_{k}shot.png")),
        plots.roc_curves(scores, os.path.join(folder, f"roc_{k}shot.png")),
    ]
    size = config.image_size
    # the image-level baseline has no maps; the global extension has D²4FAD's maps
    for m in (m for m in methods if m not in (BASELINES["image_nn"], GLOBAL_METHOD)):
        map_rows = [_map_row(t, r[m], tasks[t].modality, size) for t, r in records.items() if m in r]
        if map_rows:
            paths.append(plots.anomaly_map_grid(map_rows, os.path.join(folder, f"maps_{_slug(m)}_{k}shot.png")))
    weights = [
        _weight_row(t, r["D2FAD"], tasks[t].modality, size)
        for t, r in records.items()
        if "D2FAD" in r and r["D2FAD"]["example_weights"]
    ]
    if weights:
        paths.append(plots.support_weight_plot(weights, os.path.join(folder, f"support_weights_{k}shot.png")))
    return paths


def _map_row(task: str, record: dict, modality: str, image_size: int) -> dict:
    return {
        "task": task,
        "images": read_images(record["examples"], modality, image_size),
        "maps": torch.stack(record["example_maps"]),
        "labels": record["example_labels"],
        "scores": record["example_scores"],
        "map_range": record["map_range"],
    }


def _weight_row(task: str, record: dict, modality: str, image_size: int) -> dict:
    return {
        "task": task,
        "support": read_images(record["support"], modality, image_size),
        "weights": torch.stack(record["example_weights"]),
        "labels": record["example_labels"],
    }
