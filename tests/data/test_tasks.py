import json
import os

import pytest

from monai_d2fad.data import discover_tasks, leave_one_task_out, list_images, load_task
from tests.files import make_task


def test_good_any_case_is_normal_and_kinds_are_kept(tmp_path):
    make_task(tmp_path, "alpha", good="Good", bad="Ungood")
    make_task(tmp_path, "beta", good="GOOD", bad="tumour")
    tasks = discover_tasks(str(tmp_path))
    assert sorted(tasks) == ["alpha", "beta"]
    test = tasks["alpha"].items("test")
    assert sorted(it["label"] for it in test) == [0, 0, 1, 1]
    assert {it["kind"] for it in tasks["beta"].items("test") if it["label"]} == {"tumour"}
    assert all({"image", "label", "kind", "task", "modality"} <= set(it) for it in test)
    assert len(tasks["alpha"].items("train")) == 6


def test_parent_folder_named_good_does_not_fool_labels(tmp_path):
    root = tmp_path / "good"  # official code: 'good' in path would label everything normal
    make_task(root, "alpha")
    labels = [it["label"] for it in discover_tasks(str(root))["alpha"].items("test")]
    assert sorted(labels) == [0, 0, 1, 1]


def test_modality_from_meta_json(tmp_path):
    task_dir = make_task(tmp_path, "cxr")
    with open(os.path.join(task_dir, "meta.json"), "w") as f:
        json.dump({"modality": "X-ray"}, f)
    assert load_task(task_dir).modality == "xray"
    assert load_task(task_dir).items("train")[0]["modality"] == "xray"


def test_medianomaly_data_json(tmp_path):
    task_dir = make_task(tmp_path, "rsna")
    files = sorted(os.listdir(os.path.join(task_dir, "train", "good")))
    listing = {
        "train": {"0": [f"train/good/{f}" for f in files[:4]]},
        "test": {"0": [f"train/good/{files[4]}"], "1": [f"train/good/{files[5]}"]},
    }
    with open(os.path.join(task_dir, "data.json"), "w") as f:
        json.dump(listing, f)
    task = load_task(task_dir)
    assert len(task.items("train")) == 4
    assert [it["label"] for it in task.items("test")] == [0, 1]
    assert os.path.isfile(task.items("test")[0]["image"])


def test_missing_split_and_empty_folders_are_explained(tmp_path):
    make_task(tmp_path, "alpha")
    task = discover_tasks(str(tmp_path))["alpha"]
    with pytest.raises(KeyError, match="no 'val' split"):
        task.items("val")
    with pytest.raises(ValueError, match="needs at least 8"):
        task.require_normal(8)
    empty = tmp_path / "empty_task" / "train" / "good"
    empty.mkdir(parents=True)
    with pytest.raises(ValueError, match="no images found"):
        discover_tasks(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        discover_tasks(str(tmp_path / "nowhere"))


def test_leave_one_task_out(tmp_path):
    for name in ["a", "b", "c"]:
        make_task(tmp_path, name)
    tasks = discover_tasks(str(tmp_path))
    train, test = leave_one_task_out(tasks, "b")
    assert [t.name for t in train] == ["a", "c"] and test.name == "b"
    train, _ = leave_one_task_out(tasks, "b", ["c"])
    assert [t.name for t in train] == ["c"]
    with pytest.raises(ValueError, match="cannot also be a training task"):
        leave_one_task_out(tasks, "b", ["b", "c"])
    with pytest.raises(KeyError, match="not found"):
        leave_one_task_out(tasks, "z")


def test_no_held_out_task_trains_on_every_task(tmp_path):
    """``test_task=None``: the model to ship learns from every task."""
    for name in ["a", "b"]:
        make_task(tmp_path, name)
    train, test = leave_one_task_out(discover_tasks(str(tmp_path)), None)
    assert [t.name for t in train] == ["a", "b"] and test is None


def test_list_images_leaves_out_a_folder_inside(tmp_path):
    make_task(tmp_path, "a")
    root = tmp_path / "a" / "test"
    everything = list_images(str(root))
    kept = list_images(str(root), exclude=str(root / "good"))
    assert kept and all("/good/" not in item["image"] for item in kept) and len(kept) < len(everything)
    assert list_images(str(root), exclude=str(root)) == everything  # the folder itself is what is scored
