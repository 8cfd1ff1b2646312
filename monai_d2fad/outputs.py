"""Safe output files and folders: one run per folder at a time, results moved into place whole, nothing a user
wrote replaced unless asked.

- ``OutputLock``: a lock file holding the owner's pid and host; a second run into the same folder is refused, and a
  lock left by a process that no longer runs (a crash, a kill) is taken over with a warning.
- ``atomic_write``: write to a temporary file beside the target, flush it to disk, then rename it into place, so
  a reader (or a rerun after a crash) sees the old file or the new one, never half of one.
- ``check_overwrite``: the one refuse-to-replace check of the commands.
- ``staged_outputs``: all of it for a command that writes several outputs into a folder.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

__all__ = [
    "LOCK_NAME",
    "OutputLock",
    "OutputLockedError",
    "atomic_write",
    "check_overwrite",
    "replace_outputs",
    "staged_outputs",
]

LOCK_NAME = ".monai_d2fad.lock"


class OutputLockedError(RuntimeError):
    """Another live run holds the output folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class OutputLock:
    """Hold ``folder`` for the length of a run (``with OutputLock(folder): ...``, or ``acquire``/``release``).

    The lock is ``folder/.monai_d2fad.lock``, created exclusively, with ``{"pid", "host", "started"}``. A lock of a
    live process (or of another host, which cannot be checked) raises ``OutputLockedError`` naming the holder; a
    lock of a dead process on this host, an unreadable one, or one this process left (a bundle workflow that
    raised before its ``finalize``) is stale: it is replaced with a warning.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = os.fspath(folder)
        self.path = os.path.join(self.folder, LOCK_NAME)
        self.held = False

    def acquire(self) -> OutputLock:
        os.makedirs(self.folder, exist_ok=True)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._check_stale()
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f)
            self.held = True
            return self

    def _check_stale(self) -> None:
        """Remove a stale lock, or raise ``OutputLockedError`` for a live one."""
        try:
            with open(self.path, encoding="utf-8") as f:
                holder = json.load(f)
            pid, host = int(holder["pid"]), str(holder["host"])
        except FileNotFoundError:
            return  # released meanwhile
        except (OSError, ValueError, KeyError, TypeError):
            holder, pid, host = {}, None, socket.gethostname()  # half-written by a killed run
        mine = pid == os.getpid() and host == socket.gethostname()  # a run of this process that raised before release
        if pid is not None and not mine and (host != socket.gethostname() or _alive(pid)):
            raise OutputLockedError(
                f"{self.folder} is in use by process {pid} on {host} (started {holder.get('started')}): wait for "
                f"it to finish or choose another output folder; if no such run exists, remove {self.path}"
            )
        warnings.warn(f"removing the stale lock {self.path} of a run that no longer exists ({holder})", stacklevel=3)
        with suppress(FileNotFoundError):
            os.remove(self.path)

    def release(self) -> None:
        if self.held:
            self.held = False
            with suppress(FileNotFoundError):
                os.remove(self.path)

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **open_kwargs) -> Iterator:
    """Open a temporary file beside ``path`` for writing; on success it is flushed to disk and renamed to ``path``
    (atomic on one file system), on an error it is removed and ``path`` is left as it was."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        with open(tmp, mode, **open_kwargs) as f:  # opened by name: ``f.name`` says what is being written
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def check_overwrite(paths: Sequence[str], overwrite: bool, hint: str = "pass --overwrite to replace them") -> None:
    """Raise ``FileExistsError`` naming the ``paths`` that exist, unless ``overwrite``."""
    existing = [p for p in paths if os.path.exists(p)]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; {hint}")


def replace_outputs(staging: str, output: str, names: Sequence[str]) -> None:
    """Move the finished outputs ``names`` of ``staging`` into ``output``, replacing (whole) what a previous run left
    there, then remove ``staging``."""
    for name in names:
        target, new = os.path.join(output, name), os.path.join(staging, name)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        elif os.path.lexists(target):
            os.remove(target)
        if os.path.lexists(new):
            os.replace(new, target)
    shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def staged_outputs(output: str, names: Sequence[str], overwrite: bool) -> Iterator[str]:
    """Lock ``output``, refuse to replace its ``names`` unless ``overwrite``, and yield a staging folder inside it
    to write them to; when the block succeeds they replace the previous ones whole (``replace_outputs``), and the
    staging folder is removed in any case."""
    with OutputLock(output):
        check_overwrite([os.path.join(output, n) for n in names], overwrite)
        staging = tempfile.mkdtemp(prefix=".staging-", dir=output)
        try:
            yield staging
            replace_outputs(staging, output, names)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
