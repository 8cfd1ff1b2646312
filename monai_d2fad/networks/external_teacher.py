"""A user-supplied encoder in a teacher's place: the slot for teachers this project does not ship (PDD's
VMamba-Tiny). The module is the user's; this wrapper freezes it, owns its input normalisation and checks that it
gives four feature maps at strides 4, 8, 16 and 32."""

from __future__ import annotations

import importlib
import os

import torch
from torch import nn

from monai_d2fad.networks.teachers import STRIDES, Teacher, load_teacher_state, read_weights_file

__all__ = ["TRUSTED_TEACHERS_ENV", "ExternalTeacher", "build_external_teacher", "check_trusted", "is_import_path"]

# the environment variable that lists the external teachers (``package.module:factory``) a checkpoint may name
TRUSTED_TEACHERS_ENV = "MONAI_D2FAD_TRUSTED_TEACHERS"


def is_import_path(name: str) -> bool:
    """Whether a teacher name is a ``package.module:factory`` import path (an external teacher), not a built-in."""
    return ":" in name


def check_trusted(factory: str, source: str) -> None:
    """Refuse to import the external teacher that a file (``source``, e.g. a checkpoint) names unless the user listed
    it in ``MONAI_D2FAD_TRUSTED_TEACHERS`` (comma-separated): checkpoints are data, and importing a module runs it."""
    trusted = {f.strip() for f in os.environ.get(TRUSTED_TEACHERS_ENV, "").split(",") if f.strip()}
    if factory not in trusted:
        raise ValueError(
            f"{source} names the external teacher {factory!r}; rebuilding it imports that module, which runs its code. "
            f"If you trust it, add it to the {TRUSTED_TEACHERS_ENV} environment variable (comma-separated)"
        )


class ExternalTeacher(Teacher):
    """A user's encoder as a teacher.

    Args:
        net: called on normalised images ``[B, 3, H, W]``; returns four maps at strides 4, 8, 16, 32 (a list, tuple or
            dict of them, in that order), e.g. VMamba's ``Backbone_VSSM(out_indices=(0, 1, 2, 3))``.
        normalize: the input normalisation its weights expect (``imagenet``, ``lite`` or ``none``).
        channels_last: the maps come as ``[B, H, W, C]`` (some VMamba builds); they are permuted to ``[B, C, H, W]``.
    """

    def __init__(self, net: nn.Module, normalize: str = "imagenet", channels_last: bool = False):
        super().__init__(normalize)
        self.net, self.channels_last = net, channels_last
        was_training = net.training
        net.eval()
        with torch.no_grad():
            probe = self.features(torch.zeros(1, 3, 64, 64))
        net.train(was_training)
        self.channels = tuple(int(f.shape[1]) for f in probe)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = self.net(x)
        maps = list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, (list, tuple)) else [out]
        if self.channels_last:
            maps = [m.permute(0, 3, 1, 2) for m in maps]
        found = [tuple(m.shape) for m in maps]
        expected = [(x.shape[-2] // s, x.shape[-1] // s) for s in STRIDES]
        if len(maps) != 4 or [tuple(m.shape[-2:]) for m in maps] != expected or any(m.dim() != 4 for m in maps):
            raise ValueError(
                f"the external teacher {type(self.net).__name__} must return four [B, C, H, W] maps of sizes "
                f"{expected} (strides {STRIDES}) for a {tuple(x.shape[-2:])} input; it returned shapes {found}"
                + ("" if self.channels_last else " (pass channels_last=True for [B, H, W, C] maps)")
            )
        return maps


def build_external_teacher(
    factory: str, weights: str | os.PathLike | None = None, normalize: str | None = None, channels_last: bool = False
) -> ExternalTeacher:
    """Build a frozen ``ExternalTeacher`` from ``"package.module:factory"`` (a callable returning the encoder, called
    without arguments) and a weights file (a state dict, possibly under ``"model"`` or ``"state_dict"``).

    The import path is recorded in checkpoints; rebuilding a checkpoint's model imports it only if the user trusts it
    (``check_trusted``, docs/SECURITY.md).
    """
    module_name, _, attribute = factory.partition(":")
    try:
        net = getattr(importlib.import_module(module_name), attribute)()
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot build the external teacher {factory!r} (package.module:factory): {e}") from e
    if weights is not None:
        load_teacher_state(
            net.load_state_dict, read_weights_file(weights, ("model", "state_dict"), False), weights, factory
        )
    return ExternalTeacher(net, normalize or "imagenet", channels_last).freeze()
