"""Output folder locks, atomic writes and the overwrite check."""

import json
import os
import socket
import subprocess
import sys

import pytest

from monai_d2fad.outputs import LOCK_NAME, OutputLock, OutputLockedError, atomic_write, check_overwrite, replace_outputs


def _holder(tmp_path):
    """A live process that is not this one."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_live_holder_is_refused_by_name(tmp_path):
    holder = _holder(tmp_path)
    try:
        (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "started": "x"}))
        with pytest.raises(OutputLockedError, match=f"in use by process {holder.pid}"):
            OutputLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    with pytest.warns(UserWarning, match="stale lock"), OutputLock(tmp_path) as lock:  # the holder died: taken over
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid() and lock.held
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_half_written_lock_is_stale(tmp_path):
    (tmp_path / LOCK_NAME).write_text("{")
    with pytest.warns(UserWarning, match="stale lock"):
        OutputLock(tmp_path).acquire().release()


def test_a_lock_on_another_host_is_respected(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "x"}))
    with pytest.raises(OutputLockedError, match="on elsewhere"):
        OutputLock(tmp_path).acquire()


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(path, "w") as f:
        f.write("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]
    with atomic_write(path, "w") as f:
        f.write("new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["a.txt"]


def test_check_overwrite_names_what_exists(tmp_path):
    (tmp_path / "a").write_text("")
    check_overwrite([str(tmp_path / "b")], False)
    check_overwrite([str(tmp_path / "a")], True)
    with pytest.raises(FileExistsError, match="a already exists; pass --overwrite"):
        check_overwrite([str(tmp_path / "a"), str(tmp_path / "b")], False)


def test_replace_outputs_replaces_whole_folders(tmp_path):
    out, staging = tmp_path / "out", tmp_path / "out" / ".staging"
    (out / "maps").mkdir(parents=True)
    (out / "maps" / "stale.png").write_text("")
    (out / "keep.txt").write_text("mine")
    (staging / "maps").mkdir(parents=True)
    (staging / "maps" / "new.png").write_text("")
    (staging / "scores.csv").write_text("new")
    replace_outputs(str(staging), str(out), ["maps", "scores.csv"])
    assert os.listdir(out / "maps") == ["new.png"] and (out / "scores.csv").read_text() == "new"
    assert (out / "keep.txt").read_text() == "mine" and not staging.exists()
