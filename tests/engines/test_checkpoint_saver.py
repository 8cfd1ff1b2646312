"""Crash-safe checkpoints: atomic saves, removal after the new file is whole, no pile-up, resume past corrupt files,
and a training killed at random moments (the save window included) that never loses a finished epoch."""

import contextlib
import os
import random
import re
import signal
import subprocess
import sys

import pytest
import torch
from ignite.engine import Engine
from ignite.handlers import Checkpoint

from monai_d2fad.bundle_runs import BUNDLE_CONFIGS
from monai_d2fad.checkpoint import latest_checkpoint
from monai_d2fad.data import make_synthetic_tasks
from monai_d2fad.engines import AtomicCheckpointSaver, AtomicDiskSaver

CONFIGS = BUNDLE_CONFIGS


class _Weights:
    def __init__(self):
        self.value = torch.zeros(3)

    def state_dict(self):
        return {"value": self.value}


def _epoch_files(folder):
    return sorted(f for f in os.listdir(folder) if f.startswith("checkpoint_epoch="))


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    engine, weights = Engine(lambda e, b: None), _Weights()
    to_save = {"w": weights, "other": _Weights()}
    saver = Checkpoint(to_save, AtomicDiskSaver(str(tmp_path)), n_saved=1, global_step_transform=lambda *_: 1)
    saver(engine)
    assert os.listdir(tmp_path) == ["checkpoint_1.pt"]

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # stands for the process dying while it writes

    monkeypatch.setattr(torch, "save", killed)
    saver.global_step_transform = lambda *_: 2
    with pytest.raises(KeyboardInterrupt):
        saver(engine)
    assert os.listdir(tmp_path) == ["checkpoint_1.pt"]  # Ignite had asked to remove it before writing the next
    assert torch.equal(torch.load(tmp_path / "checkpoint_1.pt", weights_only=True)["w"]["value"], weights.value)


def test_epoch_checkpoints_of_earlier_runs_do_not_pile_up(tmp_path):
    for epoch in (1, 2):  # left by a run that was killed and resumed
        torch.save({}, tmp_path / f"checkpoint_epoch={epoch}.pt")
    (tmp_path / "model.pt").write_text("the best model: not an epoch checkpoint")
    engine = Engine(lambda e, b: None)
    engine.state.epoch = 3
    to_save = {"w": _Weights(), "other": _Weights()}
    saver = AtomicCheckpointSaver(str(tmp_path), to_save, save_interval=1, n_saved=1, epoch_level=True)
    saver._interval_checkpoint(engine)
    assert _epoch_files(tmp_path) == ["checkpoint_epoch=3.pt"] and (tmp_path / "model.pt").exists()


def test_resume_skips_an_unreadable_newest_checkpoint(tmp_path):
    torch.save({"epoch": 1}, tmp_path / "checkpoint_epoch=1.pt")
    (tmp_path / "checkpoint_epoch=2.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(UserWarning, match=r"skipping the unreadable checkpoint .*checkpoint_epoch=2.pt"):
        assert latest_checkpoint(str(tmp_path)).endswith("checkpoint_epoch=1.pt")


HARNESS = """
import os, re, sys, time
import torch
from monai.bundle import ConfigWorkflow

save = torch.save


def slow_save(obj, f, *args, **kwargs):  # widens the save window so that a kill can land inside it
    name = re.search(r"checkpoint_epoch=\\d+.pt", str(getattr(f, "name", f)))
    if name:
        print("SAVING", name.group(0), flush=True)
        time.sleep(0.5)
    save(obj, f, *args, **kwargs)
    if name:
        print("SAVED", name.group(0), flush=True)


torch.save = slow_save
configs, output, data, epochs = sys.argv[1:5]
wf = ConfigWorkflow(
    config_file=[f"{configs}/train.json", f"{configs}/demo.json"], workflow_type="train", output_dir=output,
    dataset_dir=data, epochs=int(epochs), image_size=32, batch_size=4, num_workers=0,
    logging_file=f"{configs}/logging.conf",
)
wf.initialize()
wf.run()
print("FINISHED", flush=True)
"""


def _train_until(cmd, stop=None, delay=0.0):
    """Run the training; kill it (SIGKILL) ``delay`` seconds after an output line matches ``stop``.
    Returns the output up to the kill (or the end)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if stop is not None and re.search(stop, line):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=delay)
            proc.send_signal(signal.SIGKILL)
            lines += proc.stdout.readlines()
            proc.wait(timeout=60)
            break
    proc.wait(timeout=600)
    return "".join(lines)


def _epoch(name):
    return int(re.search(r"=(\d+)", os.path.basename(name)).group(1)) if name else 0


def test_training_killed_at_random_moments_loses_no_finished_epoch(tmp_path):
    data, out = str(tmp_path / "data"), str(tmp_path / "out")
    make_synthetic_tasks(data, n_train=6, n_val=3, n_test=4, size=32)
    script = tmp_path / "train.py"
    script.write_text(HARNESS)
    cmd = [sys.executable, str(script), CONFIGS, out, data, "4"]
    rng, lost = random.Random(0), []
    # a kill inside the 0.5 s window of epoch 2's save, then one at a random moment around epoch 3's
    for stop, delay in (("SAVING checkpoint_epoch=2.pt", rng.uniform(0, 0.4)), ("epoch=3", rng.uniform(0, 1.5))):
        log = _train_until(cmd, stop, delay)
        finished = max(_epoch(n) for n in re.findall(r"SAVED (\S+)", log))  # epochs whose save had completed
        lost.append(finished - _epoch(latest_checkpoint(os.path.join(out, "models"))))
    assert lost == [0, 0]
    log = _train_until(cmd)
    assert "FINISHED" in log and "resuming from" in log, log
    assert _epoch_files(os.path.join(out, "models")) == ["checkpoint_epoch=4.pt"]  # no pile-up after restarts
    trainer = torch.load(os.path.join(out, "models", "checkpoint_epoch=4.pt"), weights_only=True)["trainer"]
    assert trainer["iteration"] == 4 * trainer["epoch_length"]
