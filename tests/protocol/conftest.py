"""Small synthetic tasks for protocol runs in seconds."""

import pytest


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    from monai_d2fad.data import make_synthetic_tasks

    root = tmp_path_factory.mktemp("tasks")
    make_synthetic_tasks(str(root), n_train=8, n_val=4, n_test=6, size=64)
    return str(root)
