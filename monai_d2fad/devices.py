"""Where and in which precision models run: the one place that decides between CUDA and the CPU, and fp32, bf16
or fp16 autocast."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["PRECISIONS", "autocast", "check_precisions", "default_device"]

# --precision choices: None keeps fp32 (no autocast)
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def default_device() -> torch.device:
    """``cuda`` when a GPU is visible, else ``cpu`` (the default of every command and app)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: str | torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``precision`` on CUDA; fp32 (no autocast) for ``fp32`` and on the CPU, whose fp16
    kernels are slow or missing."""
    dtype = PRECISIONS[precision]
    device = torch.device(device)
    if dtype is None or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def check_precisions(device: str | torch.device, precisions: list[str]) -> None:
    """Refuse bf16/fp16 off CUDA, where ``autocast`` would silently time or train fp32 under their name."""
    reduced = [p for p in precisions if PRECISIONS[p] is not None]
    if reduced and torch.device(device).type != "cuda":
        raise ValueError(f"precision {', '.join(reduced)} on {device}: bf16 and fp16 autocast run on CUDA only")
