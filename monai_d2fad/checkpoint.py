"""Checkpoints: the trained parts and the config to rebuild the model; never the teacher's weights.

D²4FAD's layout (the same whether written by ``save_checkpoint`` or by MONAI's ``CheckpointSaver`` with
``save_dict={"d2fad": ModelCard(model), "student": model.student, "l2w": model.l2w, ...}``)::

    {"d2fad": {"format", "config", "teacher_fingerprint"}, "student": state_dict, "l2w": state_dict, ...}

DCAM's: ``{"dcam": ModelCard(model), "student": model.student}`` (the student with its attention blocks); the
two-student model's: ``{"two_students": ModelCard(model), "student": model.student}`` (both students); PDD's:
``{"pdd": ModelCard(model), "student": model.student}`` (the MMU and both students).
"""

from __future__ import annotations

import glob
import os
import re
import warnings

import torch
from torch import nn

from monai_d2fad.networks.d2fad import D2FAD
from monai_d2fad.networks.dcam import DCAM
from monai_d2fad.networks.external_teacher import check_trusted, is_import_path
from monai_d2fad.networks.pdd import PDD
from monai_d2fad.networks.two_students import TwoStudents
from monai_d2fad.outputs import atomic_write, check_overwrite

__all__ = [
    "CHECKPOINT_FORMAT",
    "MODEL_KINDS",
    "ModelCard",
    "checkpoint_dict",
    "checkpoint_kind",
    "latest_checkpoint",
    "load_checkpoint",
    "load_dcam",
    "load_model",
    "model_from_checkpoint",
    "model_kind",
    "read_checkpoint",
    "save_checkpoint",
    "teacher_fingerprint",
    "trained_image_size",
]

CHECKPOINT_FORMAT = "monai_d2fad.checkpoint/1"
# the key of a checkpoint's card: the model it holds
MODEL_CLASSES = {"d2fad": D2FAD, "dcam": DCAM, "two_students": TwoStudents, "pdd": PDD}
MODEL_KINDS = tuple(MODEL_CLASSES)
# settings that checkpoints written before they existed were trained with
LEGACY_CONFIG = {"student_output": "relu", "l2w_similarity": "dot", "levels": "shallow", "global_weight": 0.0}


def teacher_fingerprint(model: nn.Module) -> str:
    """A short hash of the teacher's weights, to catch a checkpoint used with another teacher than it was trained on."""
    return model.teacher.fingerprint()


class ModelCard:
    """What a checkpoint needs besides weights, as a ``state_dict``-able object for Ignite's ``Checkpoint``.

    Loading a card (e.g. when resuming) checks that the checkpoint was made for the same model and teacher. Any
    model with a ``config`` dict and a ``teacher`` (``D2FAD``, ``DCAM``) has one. ``image_size``, the side the model
    was trained at, is recorded for the apps that score with it (``trained_image_size``).
    """

    def __init__(self, model: nn.Module, image_size: int | None = None):
        self.model, self.image_size = model, image_size

    def state_dict(self) -> dict:
        card = {
            "format": CHECKPOINT_FORMAT,
            "config": dict(self.model.config),
            "teacher_fingerprint": teacher_fingerprint(self.model),
        }
        return card if self.image_size is None else {**card, "image_size": int(self.image_size)}

    def load_state_dict(self, card: dict) -> None:
        _check_card(card, self.model, "checkpoint")


Model = D2FAD | DCAM | TwoStudents | PDD


def model_kind(model: nn.Module) -> str:
    """The checkpoint key of ``model``'s class (``MODEL_CLASSES``)."""
    return next(kind for kind, cls in MODEL_CLASSES.items() if isinstance(model, cls))


def checkpoint_dict(model: Model, image_size: int | None = None, **extra) -> dict:
    """The checkpoint content: plain tensors, numbers and strings, loadable with ``weights_only=True``; ``image_size``
    (the side the model was trained at) goes on its card."""
    card = ModelCard(model, image_size).state_dict()
    kind = model_kind(model)
    if kind != "d2fad":
        return {kind: card, "student": model.student.state_dict(), **extra}
    return {"d2fad": card, "student": model.student.state_dict(), "l2w": model.l2w.state_dict(), **extra}


def save_checkpoint(
    model: Model, path: str | os.PathLike, overwrite: bool = False, image_size: int | None = None, **extra
) -> str:
    """Write ``model`` to ``path`` whole or not at all; refuses to replace an existing file unless ``overwrite``."""
    path = os.fspath(path)
    check_overwrite([path], overwrite, "pass overwrite=True to replace it")
    with atomic_write(path) as f:
        torch.save(checkpoint_dict(model, image_size, **extra), f)
    return path


def read_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", kind: str | None = "d2fad"
) -> dict:
    """The content of a ``monai_d2fad`` checkpoint (or task package) of a ``kind`` of model (``MODEL_KINDS``: the
    key of its card; None: any), read with ``weights_only=True``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        content = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise ValueError(f"{path} is not a readable checkpoint: {type(e).__name__}: {e}") from e
    found = [k for k in MODEL_KINDS if isinstance(content, dict) and k in content]
    key = kind or (found[0] if found else "d2fad")
    card = content.get(key) if isinstance(content, dict) else None
    if not isinstance(card, dict) or card.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is not a monai_d2fad {key} checkpoint (expected format {CHECKPOINT_FORMAT!r} under "
            f"{key!r}" + (f"; it is a {found[0]} checkpoint)" if found else ")")
        )
    return content


def model_from_checkpoint(
    content: dict, teacher_weights: str | os.PathLike | None = "config", source: str = "checkpoint"
) -> Model:
    """Rebuild the model of a checkpoint's ``content``, whichever kind it holds (see ``load_checkpoint``)."""
    kind = checkpoint_kind(content)
    config = _config(content[kind])
    factory = config.get("global_teacher")
    if factory and is_import_path(factory):
        check_trusted(factory, source)
    if teacher_weights != "config":
        config["teacher_weights"] = None if teacher_weights is None else str(teacher_weights)
    model = MODEL_CLASSES[kind](**config)
    model.student.load_state_dict(content["student"])
    if kind == "d2fad":
        model.l2w.load_state_dict(content["l2w"])
    _check_card(content[kind], model, source)
    return model


def load_checkpoint(
    path: str | os.PathLike,
    teacher_weights: str | os.PathLike | None = "config",
    map_location: str | torch.device = "cpu",
) -> D2FAD:
    """Rebuild a ``D2FAD`` from ``path`` (``torch.load(..., weights_only=True)``).

    Args:
        teacher_weights: where the teacher's weights come from; ``"config"`` reuses what the checkpoint records
            (``"imagenet"`` or a path). A teacher whose weights differ from training raises an error.
    """
    return model_from_checkpoint(read_checkpoint(path), teacher_weights, os.fspath(path)).to(map_location)


def load_model(
    path: str | os.PathLike,
    kind: str | None = None,
    teacher_weights: str | os.PathLike | None = "config",
    map_location: str | torch.device = "cpu",
) -> Model:
    """Rebuild the trained model of ``kind`` (None: whichever the file holds) from ``path`` (``weights_only``);
    ``teacher_weights`` as ``load_checkpoint``'s."""
    content = read_checkpoint(path, kind=kind)
    return model_from_checkpoint(content, teacher_weights, os.fspath(path)).to(map_location)


def load_dcam(
    path: str | os.PathLike,
    teacher_weights: str | os.PathLike | None = "config",
    map_location: str | torch.device = "cpu",
) -> DCAM:
    """Rebuild a trained ``DCAM`` from ``path`` (``weights_only``); ``teacher_weights`` as ``load_checkpoint``'s."""
    return load_model(path, "dcam", teacher_weights, map_location)


def checkpoint_kind(content: dict) -> str:
    """The kind (``MODEL_KINDS``) of model a checkpoint's content holds."""
    return next(k for k in MODEL_KINDS if k in content)


def trained_image_size(content: dict) -> int | None:
    """The image side a checkpoint's model was trained at, if its card records it (bundle trainings do)."""
    size = content[checkpoint_kind(content)].get("image_size")
    return None if size is None else int(size)


def _config(card: dict) -> dict:
    """A card's model configuration, with the settings of older D²4FAD checkpoints made explicit."""
    return {**LEGACY_CONFIG, **card["config"]} if "l2w" in card["config"] else dict(card["config"])


def _check_card(card: dict, model: nn.Module, source: str) -> None:
    arch = {k: v for k, v in _config(card).items() if k != "teacher_weights"}
    mine = {k: v for k, v in model.config.items() if k != "teacher_weights"}
    if arch != mine:
        raise ValueError(f"{source} was made for another model configuration: {arch} vs {mine}")
    if teacher_fingerprint(model) == card["teacher_fingerprint"]:
        return
    message = (
        f"{source} was trained with other teacher weights than {model.config['teacher_weights']!r} "
        f"(fingerprint {card['teacher_fingerprint']} vs {teacher_fingerprint(model)}); scores would be wrong"
    )
    if model.config["teacher_weights"] is None:
        warnings.warn(message + " (random teacher: expected in tests)", stacklevel=3)
    else:
        raise ValueError(message)


def latest_checkpoint(directory: str, prefix: str = "checkpoint_epoch=") -> str | None:
    """The newest readable ``<prefix><epoch>.pt`` that MONAI's ``CheckpointSaver`` wrote in ``directory``, or None.

    A newer file that cannot be read (truncated by a crash, corrupt) is skipped with a warning naming it.
    """
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.pt$")
    found = sorted(
        (
            (int(m.group(1)), p)
            for p in glob.glob(os.path.join(directory, f"{prefix}*.pt"))
            if (m := pattern.search(os.path.basename(p)))
        ),
        reverse=True,
    )
    for _, path in found:
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # any reader error means the same: this file cannot be resumed from
            warnings.warn(f"skipping the unreadable checkpoint {path} ({type(e).__name__}: {e})", stacklevel=2)
            continue
        return path
    return None
