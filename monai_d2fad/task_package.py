"""The registered task: a trained model, one task's encoded normal references, its preprocessing and decision
threshold, as one object (``RegisteredTask``) and one file (a task package).

Every app sits on it: ``predict``, ``export``, the Deploy operators, the Label task and the bundle's inference
network (``inference.AnomalyMapNetwork``). A site registers its normal references once and then scores directly::

    python -m monai_d2fad.task_package --checkpoint model.pt --support normals/ --output chest_xray.task.pt \\
        --modality xray [--validation labelled_val/]

Like checkpoints, packages never contain the teacher's weights; loading checks the teacher is the one trained with.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import dataclass

import torch

from monai_d2fad.calibration import calibrate_threshold
from monai_d2fad.checkpoint import Model, checkpoint_dict, model_from_checkpoint, read_checkpoint, trained_image_size
from monai_d2fad.data.images import read_images
from monai_d2fad.data.support import support_paths
from monai_d2fad.methods.base import TaskDetector
from monai_d2fad.methods.d2fad import D2FADDetector, D2FADReferences, check_reference_count
from monai_d2fad.methods.dcam import DCAMDetector
from monai_d2fad.methods.pdd import PDDDetector
from monai_d2fad.methods.two_students import TwoStudentsDetector
from monai_d2fad.networks.d2fad import D2FAD
from monai_d2fad.networks.dcam import DCAM
from monai_d2fad.networks.pdd import PDD
from monai_d2fad.networks.two_students import TwoStudents
from monai_d2fad.options import add_output_options, add_task_options, add_threshold_options, command_main
from monai_d2fad.outputs import atomic_write, check_overwrite
from monai_d2fad.scoring import image_score
from monai_d2fad.visualize import threshold_overlay

__all__ = [
    "PACKAGE_FORMAT",
    "Judgement",
    "RegisteredTask",
    "add_arguments",
    "build_task_package",
    "choose_threshold",
    "is_task_package",
    "load_task_package",
    "open_task",
    "run",
    "save_task_package",
    "task_detector",
    "task_from_args",
]

PACKAGE_FORMAT = "monai_d2fad.task_package/1"


@dataclass
class Judgement:
    """What every app shows for a batch: image scores ``[B]``, decisions ``[B]`` (score >= threshold), the anomaly
    maps ``[B, 1, H, W]`` and their overlays ``[B, 3, H, W]`` on the task's fixed colour scale (or None)."""

    scores: torch.Tensor
    anomalous: torch.Tensor
    maps: torch.Tensor
    overlays: torch.Tensor | None


@dataclass
class RegisteredTask:
    """A ready ``detector`` of the task, how to preprocess its images (``modality``, ``image_size``) and how to
    decide (``threshold``: a record with its ``value`` and ``method``; None when opened without calibration, for
    callers that only need maps). The detector is a module whose ``forward`` gives the task's anomaly maps: a
    ``D2FADDetector`` with the task's references kept, or a ``DCAMDetector``, ``TwoStudentsDetector`` or ``PDDDetector``
    whose students learnt the task (the references then serve the threshold only)."""

    detector: TaskDetector
    modality: str | None
    image_size: int
    threshold: dict | None
    support_files: list[str]

    def load_images(self, paths: list[str]) -> torch.Tensor:
        """``[N, 3, S, S]`` images preprocessed as this task's (the references were)."""
        return read_images(paths, self.modality, self.image_size)

    @property
    def public_threshold(self) -> dict:
        """The threshold record as results given to others show it: without local paths (a validation folder)."""
        return {k: v for k, v in (self.threshold or {}).items() if k != "folder"}

    def judge(self, images: torch.Tensor, maps: torch.Tensor, overlays: bool = True) -> Judgement:
        """Score, decide and colour preprocessed ``images`` ``[B, 3, S, S]`` from their anomaly ``maps``: the one
        score -> decision -> overlay path of predict, the Deploy report and the Label task (on CPU tensors)."""
        if self.threshold is None:
            raise ValueError("this task was opened without a threshold: it gives maps, not decisions")
        maps = maps.float().cpu()
        scores = image_score(maps, self.detector.image_score)
        threshold = float(self.threshold["value"])
        views = threshold_overlay(images.float().cpu(), maps, threshold) if overlays else None
        return Judgement(scores, scores >= threshold, maps, views)


def choose_threshold(
    task: RegisteredTask,
    threshold: float | str = "loo",
    validation_dir: str | None = None,
    references: torch.Tensor | None = None,
) -> dict:
    """A threshold record for ``task``: ``validation_dir`` (best F1) if given, else a number, else ``"loo"`` over
    its references (``references``, the images already read, or its ``support_files``; see ``calibration``)."""
    if validation_dir is None and not isinstance(threshold, str):
        return _finite({"method": "given", "value": float(threshold)}, "the given threshold")
    if validation_dir is None and threshold != "loo":
        raise ValueError(f"threshold must be a number or 'loo', got {threshold!r}")
    if validation_dir is None and references is None:
        references = task.load_images(task.support_files)
    record = calibrate_threshold(task.detector, references, validation_dir, task.modality, task.image_size)
    return _finite(record, f"the threshold calibrated on {validation_dir or 'the references'}")


def _finite(record: dict, source: str) -> dict:
    """A threshold record whose value is a finite number (NaN would call every image normal)."""
    if not math.isfinite(record["value"]):
        raise ValueError(f"{source} is {record['value']}, not a finite number: refusing it")
    return record


# the task detector of each model (D²4FAD's still needs its references: ``set_support``)
TASK_DETECTORS: dict[type, type[TaskDetector]] = {
    D2FAD: D2FADDetector,
    DCAM: DCAMDetector,
    TwoStudents: TwoStudentsDetector,
    PDD: PDDDetector,
}


def task_detector(model: Model) -> TaskDetector:
    """The task detector of a trained model (``TASK_DETECTORS``) with its defaults."""
    return next(detector(model) for cls, detector in TASK_DETECTORS.items() if isinstance(model, cls))


def build_task_package(
    model: Model,
    support_files: list[str],
    modality: str | None = None,
    image_size: int = 128,
    threshold: float | str | None = "loo",
    validation_dir: str | None = None,
    device: str | torch.device = "cpu",
) -> RegisteredTask:
    """The task of ``model`` with ``support_files`` as its references (encoded and kept for D²4FAD; for DCAM they
    only set the threshold) and its threshold (see ``choose_threshold``; None: none)."""
    files = [os.path.abspath(p) for p in support_files]
    detector = task_detector(model.to(device))
    if isinstance(detector, D2FADDetector):
        check_reference_count(len(files), f"the references in {os.path.commonpath(files) if files else '(none)'}")
    task = RegisteredTask(detector, modality, image_size, None, files)
    references = task.load_images(files)
    if isinstance(detector, D2FADDetector):
        detector.set_support(references)
    if threshold is not None or validation_dir:
        task.threshold = choose_threshold(task, threshold or "loo", validation_dir, references)
    return task


def save_task_package(package: RegisteredTask, path: str, overwrite: bool = False) -> str:
    """Write ``package`` to ``path`` whole or not at all (refuses to replace a file unless ``overwrite``)."""
    check_overwrite([path], overwrite, "pass overwrite=True (--overwrite) to replace it")
    if package.threshold is None:
        raise ValueError("a task package needs a threshold: register it with one")
    content = checkpoint_dict(package.detector.model, package.image_size)
    content["package"] = {
        "format": PACKAGE_FORMAT,
        "modality": package.modality,
        "image_size": package.image_size,
        "threshold": json.dumps(package.threshold),
        "support_files": package.support_files,
    }
    if isinstance(package.detector, D2FADDetector):
        references = package.detector.references
        content["package"]["features"] = [f.cpu() for f in references.features]
        content["package"]["keys"] = [k.cpu() for k in references.keys]
        if package.detector.global_weight:  # the extension's image-level term compares teacher features
            content["package"]["teacher"] = [t.cpu() for t in references.teacher]
    with atomic_write(path) as f:
        torch.save(content, f)
    return path


def is_task_package(path: str) -> bool:
    """Whether ``path`` is a task package (a plain checkpoint is not)."""
    try:
        return "package" in read_checkpoint(path, kind=None)
    except (FileNotFoundError, ValueError):
        return False


def _package_from(
    content: dict, source: str, teacher_weights: str | None, device: str | torch.device
) -> RegisteredTask:
    info = content.get("package", {})
    if info.get("format") != PACKAGE_FORMAT:
        raise ValueError(f"{source} is not a monai_d2fad task package (expected format {PACKAGE_FORMAT!r})")
    threshold = _finite(json.loads(info["threshold"]), f"the threshold of {source}")
    model = model_from_checkpoint(content, teacher_weights, source).to(device)
    detector = task_detector(model)
    if isinstance(detector, D2FADDetector):
        detector.set_references(D2FADReferences(info["features"], info["keys"], info.get("teacher")))
    return RegisteredTask(detector, info["modality"], int(info["image_size"]), threshold, list(info["support_files"]))


def load_task_package(
    path: str, teacher_weights: str | None = "config", device: str | torch.device = "cpu"
) -> RegisteredTask:
    """Rebuild the detector of a package with its cached references (``weights_only`` loading)."""
    return _package_from(read_checkpoint(path, kind=None), path, teacher_weights, device)


def open_task(
    checkpoint: str,
    support: str | None = None,
    modality: str | None = None,
    image_size: int | None = None,
    threshold: float | str | None = None,
    validation_dir: str | None = None,
    teacher_weights: str | None = "config",
    device: str | torch.device = "cpu",
    calibrate: bool = True,
) -> RegisteredTask:
    """A ready task from a package file, or from a checkpoint plus ``support`` references (what ``predict``,
    ``export`` and the bundle's network take; ``image_size`` defaults to the size the checkpoint records, else 128).
    A ``threshold``/``validation_dir`` given replaces a package's threshold; its cached references are kept as they
    are, so a ``modality`` or ``image_size`` other than the package's is refused (the references were encoded with
    the package's). With ``calibrate=False`` a checkpoint's task gets no threshold (for callers that only need
    maps)."""
    content = read_checkpoint(checkpoint, kind=None)
    if "package" in content:
        package = _package_from(content, checkpoint, teacher_weights, device)
        _check_package_settings(package, checkpoint, modality, image_size)
        if threshold is not None or validation_dir:
            package.threshold = choose_threshold(package, threshold or "loo", validation_dir)
        return package
    if support is None:
        raise ValueError(f"{checkpoint} is a checkpoint: give the normal references (--support), or a task package")
    model = model_from_checkpoint(content, teacher_weights, checkpoint)
    threshold = (threshold or "loo") if calibrate else None
    image_size = image_size or trained_image_size(content) or 128
    return build_task_package(model, support_paths(support), modality, image_size, threshold, validation_dir, device)


def _check_package_settings(package: RegisteredTask, path: str, modality: str | None, image_size: int | None) -> None:
    given = {"modality": modality, "image_size": image_size}
    own = {"modality": package.modality, "image_size": package.image_size}
    differ = [f"--{k} {v} (the package's: {own[k]})" for k, v in given.items() if v is not None and v != own[k]]
    if differ:
        raise ValueError(
            f"{path} is a task package made with other settings: {', '.join(differ)}; leave them out, or register "
            "the references again with these settings"
        )


def task_from_args(args: argparse.Namespace) -> RegisteredTask:
    """``open_task`` with a command's options (``--checkpoint``, ``--support``, ``--modality``, ``--image_size``,
    ``--teacher_weights``, and ``--threshold``, ``--validation``, ``--device`` where the command has them);
    bad input ends the command with a message naming it."""
    try:
        return open_task(
            args.checkpoint,
            args.support,
            args.modality,
            args.image_size,
            getattr(args, "threshold", None),
            getattr(args, "validation", None),
            args.teacher_weights,
            getattr(args, "device", "cpu"),
        )
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}") from e


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``register``'s options."""
    add_task_options(p, support_required=True)
    add_threshold_options(p, default="loo")
    add_output_options(p, "package file to write")
    p.add_argument("--device", default="cpu", help="where the references are encoded")


def run(args: argparse.Namespace) -> str:
    """Register ``args.support`` with ``args.checkpoint`` as a task package at ``args.output``."""
    try:
        check_overwrite([args.output], args.overwrite)
        package = task_from_args(args)
        save_task_package(package, args.output, overwrite=args.overwrite)
    except FileExistsError as e:
        raise SystemExit(f"error: {e}") from e
    print(
        f"wrote {args.output}: {len(package.support_files)} references, threshold {package.threshold['value']:.6g} "
        f"({package.threshold['method']})"
    )
    return args.output


def main(argv: list[str] | None = None) -> str:
    return command_main("Freeze a checkpoint and a task's normal references into one file.", add_arguments, run, argv)


if __name__ == "__main__":
    main()
