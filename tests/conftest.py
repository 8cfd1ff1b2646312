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


@pytest.fixture
def checkpoint_file(tmp_path):
    """A saved resnet18-teacher checkpoint whose (random) teacher weights are a file, as real runs reload them."""
    from monai_d2fad.checkpoint import save_checkpoint
    from monai_d2fad.networks import D2FAD

    teacher = tmp_path / "teacher.pth"
    torch.save(D2FAD("resnet18", teacher_weights=None).teacher.net.state_dict(), teacher)
    return save_checkpoint(D2FAD("resnet18", teacher_weights=str(teacher)), tmp_path / "model.pt")


@pytest.fixture
def references(tmp_path):
    """A folder of 3 normal reference PNGs."""
    import numpy as np
    from PIL import Image

    folder = tmp_path / "references"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(folder / f"normal_{i}.png")
    return str(folder)


@pytest.fixture
def task_package_file(tmp_path, checkpoint_file, references):
    """Builds a 64 px task package from ``checkpoint_file`` and ``references``; extra command options as arguments."""
    from monai_d2fad.task_package import main

    def make(*extra: str) -> str:
        args = ["--checkpoint", checkpoint_file, "--support", references, "--output", str(tmp_path / "t.task.pt")]
        return main([*args, "--image_size", "64", *extra])

    return make
