"""What a protocol run is: its settings (``config.json``), the tasks it uses, the D²4FAD variants it trains."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field

from monai.utils import look_up_option

from monai_d2fad.data.tasks import Task, leave_one_task_out, load_task, task_dirs
from monai_d2fad.protocol.evaluation import EVALUATIONS
from monai_d2fad.protocol.training import BUNDLE_TRAIN_CONFIG
from monai_d2fad.protocol.variants import ABLATIONS, training_overrides, variant_name

__all__ = [
    "BASELINES",
    "DCAM_METHOD",
    "DCAM_MULTI_METHOD",
    "FIELD_HELP",
    "GLOBAL_METHOD",
    "METHODS",
    "PDD_METHOD",
    "STUDENT_METHODS",
    "TWO_STUDENTS_METHOD",
    "TWO_STUDENTS_MULTI_METHOD",
    "ProtocolConfig",
    "check_settings",
    "d2fad_variants",
    "load_tasks",
]

BASELINES = {"patchcore": "PatchCore", "rd4ad": "RD4AD", "image_nn": "ImageNN"}
# this project's extension of D²4FAD (not the paper's method): map score plus a weighted image-level discrepancy
GLOBAL_METHOD = "D2FAD+global"
# DCAM's rows: few-shot (a student trained on each reference set), full-shot (trained on the test task's train/good)
# and the multi-class model (one student trained on every task's train/good)
DCAM_METHOD, DCAM_MULTI_METHOD = "DCAM", "DCAM-multi"
# the two-student model's rows, the same three settings (its CNN-teacher adaptation: docs/methods/TWO_STUDENTS.md)
TWO_STUDENTS_METHOD, TWO_STUDENTS_MULTI_METHOD = "TwoStudents", "TwoStudents-multi"
# PDD's rows: few-shot and full-shot (a single-task method: no multi-class model; docs/methods/PDD.md)
PDD_METHOD = "PDD"
# methods whose students train on normal images: --methods key -> (few-shot and full-shot rows, multi-class rows or
# None for a method without a multi-class setting)
STUDENT_METHODS: dict[str, tuple[str, str | None]] = {
    "dcam": (DCAM_METHOD, DCAM_MULTI_METHOD),
    "two_students": (TWO_STUDENTS_METHOD, TWO_STUDENTS_MULTI_METHOD),
    "pdd": (PDD_METHOD, None),
}
DEFAULT_METHODS = ("d2fad", "d2fad_global", *BASELINES)  # D²4FAD and its baselines; the others by name
METHODS = (*DEFAULT_METHODS, *STUDENT_METHODS)
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
    "dcam_steps",
    "dcam_epochs",
    "dcam_max_train_per_task",
    "two_students_steps",
    "two_students_epochs",
    "two_students_max_train_per_task",
    "pdd_steps",
    "pdd_epochs",
    "pdd_max_train_per_task",
)


# what each setting means: the protocol's command-line options are made from these fields (``protocol.__main__``)
FIELD_HELP = {
    "data_dir": "folder of task folders (<task>/train, val, test)",
    "output": "results folder (created; reused to resume)",
    "test_tasks": "held-out tasks (None: all)",
    "train_tasks": "training tasks (None: all other tasks)",
    "shots": "K values, e.g. 2 4 8",
    "seeds": "reference draws per K",
    "epochs": "D²4FAD training epochs (70: the paper's)",
    "teacher": "teacher network (efficientnet_lite0 offline)",
    "teacher_weights": "'imagenet', a state-dict file, or 'none' (random, tests)",
    "image_size": "input size",
    "max_train_per_task": "cap on training queries per task",
    "checkpoint": "evaluate this trained D²4FAD instead of training",
    "train_shots": "train one model with this K for all K (None: one model per K)",
    "methods": f"from {', '.join(METHODS)} (default: {', '.join(DEFAULT_METHODS)})",
    "ablations": "D²4FAD ablations (protocol.variants.ABLATIONS)",
    "batch_size": "training and scoring batch",
    "seed": "training seed",
    "rd4ad_steps": "training steps of the per-task RD4AD baseline",
    "dcam_steps": "DCAM few-shot: training steps on each reference set",
    "dcam_epochs": "DCAM full-shot and multi-class: training epochs",
    "dcam_max_train_per_task": "DCAM full-shot and multi-class: cap on training images per task",
    "two_students_steps": "two students few-shot: training steps on each reference set",
    "two_students_epochs": "two students full-shot and multi-class: training epochs",
    "two_students_max_train_per_task": "two students full-shot and multi-class: cap on training images per task",
    "pdd_steps": "PDD few-shot: training steps on each reference set",
    "pdd_epochs": "PDD full-shot: training epochs",
    "pdd_max_train_per_task": "PDD full-shot: cap on training images",
    "evaluations": "honest: per-image scores (the headline); official: also the official code's batch-blurred, "
    "label-sorted, max scoring, as rows marked 'official' (biased: a diagnostic)",
    "examples": "normal and abnormal images per task in the map figure",
    "plots": "draw the figures",
    "config_file": "bundle training config to train with",
}


def _words(value) -> list[str]:
    """A list setting given as a list, or as words and comma lists (``["2,4", "8"]``, ``"a,b"``)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return [w.strip() for item in items for w in str(item).split(",") if w.strip()]


@dataclass
class ProtocolConfig:
    """Everything a protocol run depends on (written to ``config.json`` in ``output``).

    List settings also take comma lists, as the command line gives them; ``teacher_weights="none"`` is None.
    """

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
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    ablations: list[str] = field(default_factory=list)
    batch_size: int = 16
    seed: int = 111
    rd4ad_steps: int = 200
    dcam_steps: int = 100
    dcam_epochs: int = 5
    dcam_max_train_per_task: int | None = None
    two_students_steps: int = 100
    two_students_epochs: int = 5
    two_students_max_train_per_task: int | None = None
    pdd_steps: int = 100
    pdd_epochs: int = 5
    pdd_max_train_per_task: int | None = None
    evaluations: list[str] = field(default_factory=lambda: ["honest"])
    examples: int = 4
    plots: bool = True
    config_file: str = BUNDLE_TRAIN_CONFIG

    def __post_init__(self):
        self.data_dir = os.path.abspath(self.data_dir)  # the same data however it was spelled, on resume
        self.shots = [int(k) for k in _words(self.shots)]
        for name in ("test_tasks", "train_tasks", "methods", "ablations", "evaluations"):
            value = getattr(self, name)
            setattr(self, name, None if value is None else _words(value))
        self.teacher_weights = None if self.teacher_weights in (None, "none") else self.teacher_weights
        for method in self.methods:
            look_up_option(method, METHODS)
        for ablation in self.ablations:
            look_up_option(ablation, ABLATIONS)
        if (self.ablations or "d2fad_global" in self.methods) and "d2fad" not in self.methods:
            raise ValueError("ablations and d2fad_global are D²4FAD variants: keep 'd2fad' in the methods")
        for evaluation in self.evaluations:
            look_up_option(evaluation, EVALUATIONS)
        if not self.shots or min(self.shots) < 1 or self.seeds < 1:
            raise ValueError(f"need K >= 1 and at least one seed, got shots={self.shots}, seeds={self.seeds}")
        if self.checkpoint and not os.path.isfile(self.checkpoint):
            raise FileNotFoundError(f"--checkpoint {self.checkpoint} does not exist")


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name).strip("_")


def check_settings(config: ProtocolConfig) -> None:
    """Write ``config.json``; refuse to add cells to an output folder made with other settings."""
    os.makedirs(config.output, exist_ok=True)
    path = os.path.join(config.output, "config.json")
    mine = asdict(config)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            before = json.load(f)
        # a setting added since that run was written (absent there) made none of its rows: any value fits
        changed = {k: (before[k], mine[k]) for k in RUN_SETTINGS if k in before and before[k] != mine[k]}
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
