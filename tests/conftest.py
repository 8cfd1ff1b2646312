"""Shared fixtures: tiny images and small random-teacher models so the suite runs fast on CPU."""

import os

import pytest
import torch

SHARED = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
MEDFSAD = os.path.join(SHARED, "data", "medfsad")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def tiny_model():
    """A resnet18-teacher D2FAD with random weights, in eval mode."""
    from monai_d2fad.networks import D2FAD

    def make(l2w: str = "dot", **kwargs):
        return D2FAD("resnet18", teacher_weights=None, l2w=l2w, **kwargs).eval()

    return make
