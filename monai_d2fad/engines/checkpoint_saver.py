"""Crash-safe checkpoints: MONAI's ``CheckpointSaver`` with atomic writes and removal after the new file is whole."""

from __future__ import annotations

import contextlib
import glob
import os
import re
from collections.abc import Mapping

import torch
from ignite.handlers.checkpoint import BaseSaveHandler
from monai.handlers import CheckpointSaver

from monai_d2fad.outputs import atomic_write

__all__ = ["AtomicCheckpointSaver", "AtomicDiskSaver"]


class AtomicDiskSaver(BaseSaveHandler):
    """Ignite save handler: each checkpoint goes to a temporary file, is flushed to disk and renamed into place.

    Ignite asks to remove the checkpoint being replaced *before* it writes the new one; here that removal waits
    until the new file is complete, so a kill at any moment leaves a whole checkpoint on disk.

    Args:
        dirname: folder of the checkpoints.
        filename: a fixed name for every save (MONAI's ``final_filename``/``key_metric_filename``), else Ignite's.
        keep_pattern: for numbered checkpoints (``checkpoint_epoch=(\\d+)\\.pt``), the files of this pattern beyond
            the ``keep`` newest are removed after each save, also those left by earlier runs (no pile-up on resume).
    """

    def __init__(self, dirname: str, filename: str | None = None, keep_pattern: str | None = None, keep: int = 1):
        self.dirname, self.filename, self.keep = dirname, filename, keep
        self.keep_pattern = re.compile(keep_pattern) if keep_pattern else None
        self._pending: list[str] = []

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        name = self.filename or filename
        with atomic_write(os.path.join(self.dirname, name)) as f:
            torch.save(checkpoint, f)
        for old in self._pending:
            if old != name:
                _remove(os.path.join(self.dirname, old))
        self._pending = []
        if self.keep_pattern is not None:
            self._prune()

    def remove(self, filename: str) -> None:
        self._pending.append(self.filename or filename)

    def _prune(self) -> None:
        numbered = sorted(
            (int(m.group(1)), path)
            for path in glob.glob(os.path.join(self.dirname, "*.pt"))
            if (m := self.keep_pattern.fullmatch(os.path.basename(path)))
        )
        for _, path in numbered[: -self.keep]:
            _remove(path)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI's ``CheckpointSaver`` (same arguments), writing every checkpoint with ``AtomicDiskSaver``.

    MONAI's saver writes in place and Ignite removes the previous checkpoint before writing the next one, so a kill
    in that window lost every finished epoch. Epoch checkpoints of earlier (interrupted) runs beyond ``n_saved`` are
    removed after each save.
    """

    def __init__(self, save_dir: str, *args, **kwargs):
        super().__init__(save_dir, *args, **kwargs)
        # MONAI builds one ignite ``Checkpoint`` per kind (final, key metric, interval): swap their disk handlers
        for attribute in ("_final_checkpoint", "_key_metric_checkpoint"):
            checkpoint = getattr(self, attribute, None)
            if checkpoint is not None:
                checkpoint.save_handler = AtomicDiskSaver(save_dir, checkpoint.save_handler.filename)
        interval = getattr(self, "_interval_checkpoint", None)
        if interval is not None:
            # Ignite's file name: [<prefix>_]<the one object's key, or "checkpoint">_<epoch|iteration>=<n>.pt
            prefix = interval.filename_prefix + "_" if interval.filename_prefix else ""
            name = next(iter(self.save_dict)) if len(self.save_dict) == 1 else "checkpoint"
            numbered = rf"{re.escape(prefix + name)}_{interval.score_name}=(\d+)\.pt"
            pattern = numbered if interval.n_saved else None
            interval.save_handler = AtomicDiskSaver(save_dir, keep_pattern=pattern, keep=interval.n_saved or 1)
