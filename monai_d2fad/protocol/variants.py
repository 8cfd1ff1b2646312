"""D²4FAD variants of the paper's ablations, as overrides of the bundle's training config."""

from __future__ import annotations

from monai_d2fad.networks.decoder import LEVELS, default_student_output
from monai_d2fad.networks.learn_to_weight import L2W_VARIANTS
from monai_d2fad.networks.teachers import TEACHERS

__all__ = ["ABLATIONS", "EVALUATION_KEYS", "training_overrides", "variant_name"]

# keys that change how a trained model is scored, not how it is trained (one checkpoint serves their variants)
EVALUATION_KEYS = ("image_score",)

ABLATIONS: dict[str, dict[str, dict]] = {
    # Table 2 rows, in the paper's order; the full model is D²4FAD itself
    "table2": {
        "tsd": {"ssd": False, "l2w": "none"},
        "ssd": {"tsd": False, "l2w": "none"},
        "ssd+tsd": {"l2w": "none"},
        "ssd+l2w": {"tsd": False},
        "ssd+tsd+l2w": {},
    },
    "lambda": {f"lam={v}": {"lam": v} for v in (1.0, 0.5, 0.1, 0.05, 0.01)},  # Table 3
    "student_output": {"linear": {"student_output": "linear"}, "relu": {"student_output": "relu"}},
    "l2w_similarity": {"cosine": {"l2w_similarity": "cosine"}, "dot": {"l2w_similarity": "dot"}},
    "levels": {name: {"levels": name} for name in LEVELS},  # which teacher features are distilled
    "lr_schedule": {"constant": {"lr_schedule": False}, "cosine": {"lr_schedule": True}},  # the bundle's cosine decay
    # the network as its training starts, scored without training: what distillation adds on a task it never saw
    "untrained": {"trained": {}, "untrained": {"untrained": True}},
    # the bundle's model selection on val: the network before training and every epoch, or the trained epochs only
    "selection": {"start_and_epochs": {}, "epochs_only": {"val_at_start": False}},
    "teacher": {name: {"teacher": name} for name in sorted(TEACHERS)},  # Table 4
    "l2w": {name: {"l2w": name} for name in L2W_VARIANTS},  # Table 7
    "image_score": {"mean": {"image_score": "mean"}, "max": {"image_score": "max"}},
    "loss": {"location": {"loss_reduction": "location"}, "flatten": {"loss_reduction": "flatten"}},
}

DEFAULTS = {
    "l2w": "dot",
    "l2w_similarity": "cosine",
    "lam": 100.0,
    "tsd": True,
    "ssd": True,
    "loss_reduction": "location",
    "image_score": "mean",
    "levels": "shallow",
    "lr_schedule": False,
    "untrained": False,
    "val_at_start": True,
}


def _changed(overrides: dict, base: dict) -> dict:
    defaults = dict(DEFAULTS)
    if "teacher" in base:  # the student's output follows the teacher's features unless set
        defaults["student_output"] = default_student_output(base["teacher"])
    return {k: v for k, v in sorted(overrides.items()) if defaults.get(k, base.get(k)) != v}


def variant_name(overrides: dict, base: dict | None = None) -> str:
    """``D2FAD`` for the default model, else ``D2FAD[key=value,...]`` listing what differs from the defaults.

    ``base`` holds run-wide settings (e.g. the teacher) that count as defaults.
    """
    changed = _changed(overrides, base or {})
    if not changed:
        return "D2FAD"
    return "D2FAD[" + ",".join(f"{k}={v}" for k, v in changed.items()) + "]"


def training_overrides(overrides: dict, base: dict | None = None) -> dict:
    """The part of a variant that needs its own training run (evaluation-only keys left out; nothing for the
    ``untrained`` variant, which is scored as its training would start)."""
    if overrides.get("untrained"):
        return {}
    return {k: v for k, v in _changed(overrides, base or {}).items() if k not in EVALUATION_KEYS}
