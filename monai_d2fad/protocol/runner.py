"""Leave-one-task-out benchmark: train D²4FAD per held-out task, score it and the baselines on shared references.

For each test task the runner trains on the other tasks (model selection on their ``val`` splits, never on the
test task), then scores the test split against every saved K-shot reference list (K x seeds). Each cell
(method, task, K, seed) becomes a row of ``results.csv``; finished cells are skipped when the run is repeated.
DCAM, the two-student model and PDD add their few-shot rows (students per reference list) and full-shot rows
(students trained on the test task's ``train/good``, model selection on its ``val`` split); DCAM and the two-student
model also their multi-class model's (one model for every task).
"""

from __future__ import annotations

import json
import logging
import os

from torch import nn

from monai_d2fad.bundle_runs import METHOD_CONFIGS
from monai_d2fad.checkpoint import load_checkpoint, load_model
from monai_d2fad.data.evaluation import evaluation_sets
from monai_d2fad.devices import default_device
from monai_d2fad.methods import (
    D2FADDetector,
    DCAMDetector,
    Detector,
    ImageNearestNeighbour,
    PatchCore,
    PDDDetector,
    RD4ADPerTask,
    TwoStudentsDetector,
)
from monai_d2fad.networks.d2fad import D2FAD
from monai_d2fad.networks.dcam import DCAM
from monai_d2fad.networks.pdd import PDD
from monai_d2fad.networks.two_students import TwoStudents
from monai_d2fad.outputs import OutputLock
from monai_d2fad.protocol.cells import TaskCells
from monai_d2fad.protocol.config import (
    BASELINES,
    GLOBAL_METHOD,
    STUDENT_METHODS,
    ProtocolConfig,
    check_settings,
    d2fad_variants,
    load_tasks,
    slug,
)
from monai_d2fad.protocol.report import write_report
from monai_d2fad.protocol.results import ResultsFile
from monai_d2fad.protocol.selection import choose_global_weight
from monai_d2fad.protocol.training import initial_network, train_with_bundle
from monai_d2fad.protocol.variants import training_overrides

__all__ = ["run_protocol"]

logger = logging.getLogger(__name__)


def _run_d2fad(config: ProtocolConfig, run: TaskCells, name: str, overrides: dict) -> None:
    """Train (or reuse) the variant ``name`` per group of K and score it; the default model also serves the
    global-score extension, whose weight is chosen on the training tasks' ``val`` splits."""
    with_global = name == "D2FAD" and "d2fad_global" in config.methods
    groups = [[k] for k in config.shots] if config.train_shots is None else [list(config.shots)]
    for shots in groups:
        sets = run.pending(name, shots)
        global_sets = run.pending(GLOBAL_METHOD, shots) if with_global else []
        if not sets and not global_sets:
            continue
        train_k = config.train_shots or shots[0]
        model, seconds, train_shots = _model(config, run, shots, train_k, overrides)
        model = model.to(default_device())
        if sets:
            detector = D2FADDetector(model, overrides.get("image_score"), global_weight=0.0)  # the paper's score
            run.evaluate(name, detector, sets, train_shots, seconds, "cross-task")
        if global_sets:
            detector = D2FADDetector(model, global_weight=_global_weight(config, run, model, train_k))
            run.evaluate(GLOBAL_METHOD, detector, global_sets, train_shots, seconds, "cross-task")


def _model(
    config: ProtocolConfig, run: TaskCells, shots: list[int], train_k: int, overrides: dict
) -> tuple[nn.Module, float, dict]:
    """The D²4FAD to score for the variant ``overrides``: the given checkpoint, the bundle's network as its training
    starts (``untrained``) or a trained one (reused when trained before). Also its training time and, per test K,
    what it was trained with (the ``train_shots`` column)."""
    bundle = _bundle_overrides(config, run, train_k, {"teacher": config.teacher}, overrides)
    if overrides.get("untrained"):
        return initial_network(bundle, config.config_file), 0.0, dict.fromkeys(shots, "untrained")
    if config.checkpoint:
        return load_checkpoint(config.checkpoint), 0.0, dict.fromkeys(shots, "checkpoint")
    checkpoint, seconds = train_with_bundle(bundle, config.config_file)
    return load_checkpoint(checkpoint), seconds, dict.fromkeys(shots, train_k)


STUDENT_MODELS = {
    "dcam": (DCAM, DCAMDetector),
    "two_students": (TwoStudents, TwoStudentsDetector),
    "pdd": (PDD, PDDDetector),
}


def _student_network(config: ProtocolConfig, key: str) -> nn.Module:
    """The method's network with the run's teacher (PDD's second teacher gets the same kind of weights)."""
    network_class = STUDENT_MODELS[key][0]
    options = {"global_teacher_weights": config.teacher_weights} if network_class is PDD else {}
    return network_class(config.teacher, config.teacher_weights, **options).to(default_device())


def _run_students(config: ProtocolConfig, run: TaskCells, tasks: list[str], key: str) -> None:
    """The rows of a method whose students train on normal images (``STUDENT_METHODS``: DCAM, the two-student
    model, PDD) for ``run``'s task: few-shot (students per reference list), full-shot (trained on the task's
    ``train/good``) and, if the method has one, the multi-class model trained on ``tasks``."""
    detector_class = STUDENT_MODELS[key][1]
    method, multi_method = STUDENT_METHODS[key]
    steps, epochs, cap = (getattr(config, f"{key}_{s}") for s in ("steps", "epochs", "max_train_per_task"))
    sets = run.pending(method, config.shots)
    if sets:
        detector = detector_class(
            _student_network(config, key), train_on_references=True, steps=steps, seed=config.seed
        )
        run.evaluate(method, detector, sets, {k: k for k in config.shots}, setting="few-shot")
    for name, train_tasks, folder in (
        (method, [run.task.name], os.path.join("full-shot", run.task.name)),
        (multi_method, tasks, "multi-class"),
    ):
        if name is None or run.results.done(name, run.task.name, 0, 0):
            continue
        overrides = {
            **_run_overrides(config, os.path.join(key, folder)),
            "train_tasks": train_tasks,
            "epochs": epochs,
            "max_train_per_task": cap,
        }
        checkpoint, seconds = train_with_bundle(overrides, os.path.join(METHOD_CONFIGS[key], "train.json"))
        detector = detector_class(load_model(checkpoint, key, map_location=default_device()))
        run.evaluate(name, detector, [run.full_shot_set()], {0: "train/good"}, seconds, "full-shot")


def _run_overrides(config: ProtocolConfig, folder: str) -> dict:
    """Bundle config ids every training of the run shares; its outputs go to ``models/<folder>``."""
    return {
        "dataset_dir": config.data_dir,
        "teacher": config.teacher,
        "teacher_weights": config.teacher_weights,
        "image_size": config.image_size,
        "batch_size": config.batch_size,
        "seed": config.seed,
        "num_workers": 0,
        "support_dir": os.path.join(config.output, "support_lists"),
        "output_dir": os.path.join(config.output, "models", folder),
    }


def _global_weight(config: ProtocolConfig, run: TaskCells, model: D2FAD, train_k: int) -> float:
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
        weight, means = choose_global_weight(model, sets, config.image_size)
        chosen[key] = {"weight": weight, "val_auroc": {str(w): round(v, 2) for w, v in means.items()}}
        logger.info(
            "%s: global weight %s chosen on val (mean AUROC by weight %s)", key, weight, chosen[key]["val_auroc"]
        )
        with open(path, "w", encoding="utf-8") as f:
            json.dump(chosen, f, indent=2)
    return float(chosen[key]["weight"])


def _bundle_overrides(config: ProtocolConfig, run: TaskCells, train_k: int, base: dict, overrides: dict) -> dict:
    trained = training_overrides(overrides, base)
    variant = slug(",".join(f"{k}={v}" for k, v in trained.items())) or "default"
    return {
        **_run_overrides(config, os.path.join(variant, run.task.name, f"train_{train_k}-shot")),
        "test_task": run.task.name,
        "train_tasks": [t.name for t in run.train_tasks],
        "shots": train_k,
        "epochs": config.epochs,
        "max_train_per_task": config.max_train_per_task,
        **trained,
    }


def _baseline(config: ProtocolConfig, key: str) -> Detector:
    teacher = {"teacher": config.teacher, "teacher_weights": config.teacher_weights, "device": default_device()}
    if key == "patchcore":
        return PatchCore(**teacher)
    if key == "rd4ad":
        return RD4ADPerTask(**teacher, steps=config.rd4ad_steps, seed=config.seed)
    return ImageNearestNeighbour(**teacher)


def run_protocol(config: ProtocolConfig) -> ResultsFile:
    """Run every pending cell, then write ``results.md`` and the figures. Returns the results."""
    with OutputLock(config.output):
        return _run_protocol(config)


def _run_protocol(config: ProtocolConfig) -> ResultsFile:
    check_settings(config)
    tasks = load_tasks(config)
    test_tasks = config.test_tasks or sorted(tasks)
    results = ResultsFile(os.path.join(config.output, "results.csv"))
    variants = d2fad_variants(config) if "d2fad" in config.methods else {}
    baselines = {}
    for name in test_tasks:
        run = TaskCells(config, tasks, name, results)
        for method, overrides in variants.items():
            _run_d2fad(config, run, method, overrides)
        for key in (m for m in config.methods if m in BASELINES):
            sets = run.pending(BASELINES[key], config.shots)
            if sets:
                baselines.setdefault(key, _baseline(config, key))
                train_shots = {k: k for k in config.shots} if key == "rd4ad" else {}  # RD4AD trains on the K
                run.evaluate(BASELINES[key], baselines[key], sets, train_shots)
        for key in (m for m in config.methods if m in STUDENT_METHODS):
            _run_students(config, run, sorted(tasks), key)
    write_report(config, results, tasks)
    return results
