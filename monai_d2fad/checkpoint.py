"""D²4FAD checkpoints: student, learn-to-weight and the config to rebuild the model; never the teacher's weights."""

from __future__ import annotations

import hashlib
import os
import warnings

import torch

from monai_d2fad.networks.d2fad import D2FAD

__all__ = ["CHECKPOINT_FORMAT", "checkpoint_dict", "save_checkpoint", "load_checkpoint", "teacher_fingerprint"]

CHECKPOINT_FORMAT = "monai_d2fad.checkpoint/1"


def teacher_fingerprint(model: D2FAD) -> str:
    """A short hash of the teacher's weights, to catch a checkpoint used with another teacher than it was trained on."""
    h = hashlib.sha256()
    for tensor in model.teacher.state_dict().values():
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes()[:4096])
    return h.hexdigest()[:16]


def checkpoint_dict(model: D2FAD, **extra) -> dict:
    """The checkpoint content: plain tensors, numbers and strings, loadable with ``weights_only=True``."""
    return {
        "format": CHECKPOINT_FORMAT,
        "config": dict(model.config),
        "student": model.student.state_dict(),
        "l2w": model.l2w.state_dict(),
        "teacher_fingerprint": teacher_fingerprint(model),
        **extra,
    }


def save_checkpoint(model: D2FAD, path: str | os.PathLike, overwrite: bool = False, **extra) -> str:
    """Write ``model`` to ``path``; refuses to replace an existing file unless ``overwrite``."""
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save(checkpoint_dict(model, **extra), path)
    return path


def load_checkpoint(
    path: str | os.PathLike, teacher_weights: str | os.PathLike | None = "config", map_location: str | torch.device = "cpu"
) -> D2FAD:
    """Rebuild a ``D2FAD`` from ``path`` (``torch.load(..., weights_only=True)``).

    Args:
        teacher_weights: where the teacher's weights come from; ``"config"`` reuses what the checkpoint records
            (``"imagenet"`` or a path). A teacher whose weights differ from training raises an error.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise ValueError(f"{path} is not a readable checkpoint: {type(e).__name__}: {e}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a monai_d2fad checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    config = dict(ckpt["config"])
    if teacher_weights != "config":
        config["teacher_weights"] = None if teacher_weights is None else str(teacher_weights)
    model = D2FAD(**config)
    model.student.load_state_dict(ckpt["student"])
    model.l2w.load_state_dict(ckpt["l2w"])
    if teacher_fingerprint(model) != ckpt["teacher_fingerprint"]:
        message = (
            f"{path} was trained with other teacher weights than {config['teacher_weights']!r} "
            f"(fingerprint {ckpt['teacher_fingerprint']} vs {teacher_fingerprint(model)}); scores would be wrong"
        )
        if config["teacher_weights"] is None:
            warnings.warn(message + " (random teacher: expected in tests)", stacklevel=2)
        else:
            raise ValueError(message)
    return model.to(map_location)
