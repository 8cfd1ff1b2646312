from monai_d2fad.data import SYNTHETIC_TASKS, discover_tasks, make_synthetic_tasks


def test_synthetic_tasks_are_real_png_task_folders(tmp_path):
    make_synthetic_tasks(str(tmp_path), n_train=5, n_val=2, n_test=3, size=32)
    tasks = discover_tasks(str(tmp_path))
    assert sorted(tasks) == sorted(SYNTHETIC_TASKS) and all(n.startswith("synthetic_") for n in tasks)
    task = tasks["synthetic_rings"]
    assert len(task.items("train")) == 5
    assert sorted(it["label"] for it in task.items("test")) == [0, 0, 0, 1, 1, 1]
    assert all(it["image"].endswith(".png") for it in task.items("val"))


def test_existing_tasks_are_not_overwritten(tmp_path):
    make_synthetic_tasks(str(tmp_path), names=["synthetic_cells"], n_train=3, size=32)
    make_synthetic_tasks(str(tmp_path), names=["synthetic_cells"], n_train=9, size=32)
    assert len(discover_tasks(str(tmp_path))["synthetic_cells"].items("train")) == 3


def test_discover_or_make_synthetic_only_fills_empty_or_synthetic_folders(tmp_path):
    from monai_d2fad.data import discover_or_make_synthetic
    from tests.files import make_task

    tasks = discover_or_make_synthetic(str(tmp_path / "empty"), size=32)
    assert sorted(tasks) == sorted(SYNTHETIC_TASKS)
    make_task(tmp_path / "real", "alpha")
    assert sorted(discover_or_make_synthetic(str(tmp_path / "real"))) == ["alpha"]
