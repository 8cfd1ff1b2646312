import os

import pytest

from monai_d2fad.data import discover_tasks, draw_support, read_support_list, write_support_lists
from tests.files import make_task


@pytest.fixture
def task(tmp_path):
    make_task(tmp_path / "tasks", "alpha", n_train=10)
    return discover_tasks(str(tmp_path / "tasks"))["alpha"]


def test_lists_are_reproducible_distinct_and_normal(task, tmp_path):
    paths = write_support_lists(task, str(tmp_path / "lists"), shots=(2, 4), seeds=3)
    assert len(paths) == 6
    four = read_support_list(paths[(4, 0)], task.root)
    assert len(set(four)) == 4 and all("/train/good/" in p for p in four)
    assert four == draw_support(task, 4, 0)
    assert read_support_list(paths[(4, 0)], task.root) != read_support_list(paths[(4, 1)], task.root)


def test_existing_lists_are_kept(task, tmp_path):
    out = str(tmp_path / "lists")
    path = write_support_lists(task, out, shots=(2,), seeds=1)[(2, 0)]
    normal = sorted(it["image"] for it in task.normal())
    with open(path, "w") as f:
        f.write("\n".join(os.path.relpath(p, task.root) for p in normal[-2:]) + "\n")
    write_support_lists(task, out, shots=(2,), seeds=1)
    assert read_support_list(path, task.root) == normal[-2:]


def test_broken_lists_are_explained(task, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("train/good/missing.png\n")
    with pytest.raises(FileNotFoundError, match=r"missing.png"):
        read_support_list(str(bad), task.root)
    with pytest.raises(ValueError, match="needs at least 20"):
        draw_support(task, 20, 0)


def test_a_list_of_a_task_whose_path_has_spaces_reads_back_alone(tmp_path):
    make_task(tmp_path / "my tasks", "alpha beta", n_train=4)
    task = discover_tasks(str(tmp_path / "my tasks"))["alpha beta"]
    path = write_support_lists(task, str(tmp_path / "lists"), shots=(2,), seeds=1)[(2, 0)]
    assert read_support_list(path) == draw_support(task, 2, 0)  # root from the header, as --support reads it


def test_a_list_is_written_whole_or_not_at_all(task, tmp_path, monkeypatch):
    """Two processes (DDP ranks) draw the same lists at once: a reader must never find a half-written list."""
    import monai_d2fad.data.support as support

    out = str(tmp_path / "lists")
    monkeypatch.setattr(support.os.path, "relpath", lambda *args: 0)  # the list's text fails once the file is open
    with pytest.raises(TypeError):
        write_support_lists(task, out, shots=(2,), seeds=1)
    monkeypatch.undo()
    assert not [f for _, _, files in os.walk(out) for f in files]  # no empty or partial list left behind
    path = write_support_lists(task, out, shots=(2,), seeds=1)[(2, 0)]
    assert len(read_support_list(path, task.root)) == 2
