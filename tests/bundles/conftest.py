"""Synthetic task folders and small settings shared by the student bundles' tests (DCAM, the two students)."""

import pytest

from monai_d2fad.data import make_synthetic_tasks

# tiny, fast trainings: 32 px, a random ResNet-18 teacher
SMALL = ["image_size=32", "batch_size=4", "teacher=resnet18", "teacher_weights=null", "seed=0"]


@pytest.fixture(scope="module")
def tasks_dir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("tasks"))
    make_synthetic_tasks(root, n_train=6, n_val=3, n_test=4, size=32)
    return root
