"""Integration over the real MedFSAD tasks in ../shared/data/medfsad (skipped when absent)."""

import os

import pytest
import torch

from monai_d2fad.data import EpisodeDataset, discover_tasks, leave_one_task_out, load_image
from tests.conftest import MEDFSAD

pytestmark = pytest.mark.skipif(not os.path.isdir(MEDFSAD), reason=f"MedFSAD data not found at {MEDFSAD}")

COUNTS = {
    "brain_tumor_mri": (1000, 329, 603),
    "chest_xray": (1000, 231, 387),
    "fundus_glaucoma": (337, 150, 300),
    "histopathology_lung": (1000, 400, 400),
}


def test_four_tasks_with_readme_counts():
    tasks = discover_tasks(MEDFSAD)
    assert sorted(tasks) == sorted(COUNTS)
    for name, (train, good, bad) in COUNTS.items():
        test = tasks[name].items("test")
        assert len(tasks[name].items("train")) == train
        assert (sum(1 - it["label"] for it in test), sum(it["label"] for it in test)) == (good, bad)
    assert {t.modality for t in tasks.values()} == {"mri", "xray", "fundus", "histopathology"}


def test_each_modality_loads_and_episodes_mix_tasks():
    tasks = discover_tasks(MEDFSAD)
    for task in tasks.values():
        x = load_image(task.items("test")[0]["image"], modality=task.modality)
        assert x.shape == (3, 128, 128) and float(x.min()) >= 0 and float(x.max()) <= 1 and float(x.std()) > 0.01
    train, _ = leave_one_task_out(tasks, "chest_xray")
    ds = EpisodeDataset(train, shots=2, seed=0, image_size=64, max_per_task=4)
    assert len(ds) == 12 and {ds.task_of[i] for i in range(len(ds))} == {t.name for t in train}
    assert torch.isfinite(ds[0]["support"]).all()
