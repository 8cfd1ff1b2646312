"""Where models run by default: the one place that decides between CUDA and the CPU."""

from __future__ import annotations

import torch

__all__ = ["default_device"]


def default_device() -> torch.device:
    """``cuda`` when a GPU is visible, else ``cpu`` (the default of every command and app)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
