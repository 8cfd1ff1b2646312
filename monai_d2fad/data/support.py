"""K-shot support lists per (task, K, seed) as plain text files (MVFA style), so every method and run uses the
same normal references. Paths are stored relative to the task folder.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Sequence

import numpy as np

from monai_d2fad.data.tasks import Task, is_image_file, list_images
from monai_d2fad.outputs import atomic_write

__all__ = ["draw_support", "read_support_list", "support_list_path", "support_paths", "write_support_lists"]


def draw_support(task: Task, shots: int, seed: int) -> list[str]:
    """``shots`` normal images of ``task``'s train split, drawn reproducibly from ``seed``."""
    pool = sorted(item["image"] for item in task.require_normal(shots, "train"))
    rng = np.random.default_rng([seed, shots, zlib.crc32(task.name.encode())])
    return [pool[i] for i in sorted(rng.choice(len(pool), shots, replace=False))]


def support_list_path(out_dir: str, task: str, shots: int, seed: int) -> str:
    return os.path.join(out_dir, task, f"{shots}-shot_seed{seed}.txt")


def write_support_lists(
    task: Task, out_dir: str, shots: Iterable[int] = (2, 4, 8), seeds: int | Iterable[int] = 5
) -> dict[tuple[int, int], str]:
    """Write one list per (K, seed); existing lists are kept (and checked) so reruns use the same supports."""
    seed_list = range(seeds) if isinstance(seeds, int) else list(seeds)
    paths = {}
    for k in shots:
        for seed in seed_list:
            path = support_list_path(out_dir, task.name, k, seed)
            if os.path.exists(path):
                found = read_support_list(path, task.root)
                if len(found) != k:
                    raise ValueError(f"{path} lists {len(found)} images, expected {k}; remove it to redraw")
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                lines = [os.path.relpath(p, task.root) for p in draw_support(task, k, seed)]
                # whole or absent: a process drawing the same list at the same time (DDP ranks) never reads half
                with atomic_write(path, "w", encoding="utf-8") as f:
                    f.write(f"# task={task.name} shots={k} seed={seed} root={task.root}\n" + "\n".join(lines) + "\n")
            paths[(k, seed)] = path
    return paths


def read_support_list(path: str, root: str | None = None) -> list[str]:
    """Image paths listed in ``path`` (one a line, ``#`` comments); all must exist.

    Relative paths are resolved against ``root``, else the ``root=`` recorded in the list's header (the task
    folder it was drawn from), else the list's own folder.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"support list {path} does not exist")
    with open(path, encoding="utf-8") as f:
        raw = [ln.strip() for ln in f if ln.strip()]
    lines = [ln for ln in raw if not ln.startswith("#")]
    # the header's root= is its last field, so a root with spaces is read whole
    recorded = [ln.split(" root=", 1)[1] for ln in raw if ln.startswith("#") and " root=" in ln]
    base = root or (recorded[0] if recorded else os.path.dirname(os.path.abspath(path)))
    images = [ln if os.path.isabs(ln) else os.path.join(base, ln) for ln in lines]
    missing = [p for p in images if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"support list {path} names missing images: {missing[:3]}")
    if not images:
        raise ValueError(f"support list {path} is empty")
    return images


def support_paths(support: str | os.PathLike | Sequence[str]) -> list[str]:
    """Image paths from a folder, one image, a support list file (one path a line) or a sequence of paths."""
    if not isinstance(support, (str, os.PathLike)):
        return [os.fspath(p) for p in support]
    path = os.fspath(support)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"the normal references {path} do not exist: give a folder of 2-8 normal images of the task, one image or "
            "a support-list file (the bundle's inference reads <dataset_dir>/support unless --support is given)"
        )
    if os.path.isdir(path) or is_image_file(path):
        return [item["image"] for item in list_images(path)]
    return read_support_list(path)
