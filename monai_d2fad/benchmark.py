"""Speed and memory of scoring: cached references (this project) against the official pattern (references
re-encoded with every batch, K + 1 passes per query), in the same run on the same machine.

    python -m monai_d2fad.benchmark --output benchmark.json

Each configuration (teacher x image size x K x pattern x precision x compile backend) runs in its own process so
that its peak memory is its own; ``--in_process`` runs them all in one (on a GPU, where peak GPU memory is reset per
configuration and a process start per row would cost more than the row). Teachers get random weights (speed does
not depend on them), except the offline Lite0 weights.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import time

import torch

from monai_d2fad.devices import PRECISIONS, autocast, check_precisions, default_device
from monai_d2fad.options import command_main

__all__ = ["add_arguments", "configurations", "machine", "main", "measure", "run", "save_report"]

PATTERNS = ("cached", "official")


def measure(
    teacher: str,
    image_size: int,
    shots: int,
    pattern: str,
    batch_size: int,
    batches: int,
    device: str,
    precision: str = "fp32",
    compile_backend: str | None = None,
) -> dict:
    """Time ``batches`` batches (after one warm-up, which also compiles) of one configuration in this process.

    ``precision``: autocast (``devices.PRECISIONS``); ``compile_backend``: ``torch.compile`` the scoring with this
    backend (None: eager).
    """
    from monai_d2fad.methods import D2FADDetector
    from monai_d2fad.networks import D2FAD

    torch.manual_seed(0)
    weights = "imagenet" if teacher == "efficientnet_lite0" else None
    with torch.device(device):  # initialised where it runs: random WRN50-2 weights take seconds on a CPU
        model = D2FAD(teacher, teacher_weights=weights).to(device).eval()
    support = torch.rand(shots, 3, image_size, image_size, device=device)
    queries = torch.rand(batches + 1, batch_size, 3, image_size, image_size, device=device)
    if pattern == "cached":
        run = D2FADDetector(model).set_support(support)  # forward: the maps, as predict scores them
    else:

        def run(q: torch.Tensor):
            return model.score_output(model(q, support.expand(q.shape[0], -1, -1, -1, -1)), q.shape[-2:])

    if compile_backend:
        run = torch.compile(run, backend=compile_backend)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(batches + 1):
        start = time.perf_counter()
        with torch.inference_mode(), autocast(device, precision):
            run(queries[i])
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i:  # the first batch warms up (and compiles)
            times.append(time.perf_counter() - start)
    times_t = torch.tensor(times)
    result = {
        "teacher": teacher,
        "image_size": image_size,
        "shots": shots,
        "pattern": pattern,
        "precision": precision,
        "compiled": compile_backend or False,
        "batch_size": batch_size,
        "batches": batches,
        "queries_per_s": round(batch_size * batches / sum(times), 2),
        "batch_latency_p50_ms": round(float(times_t.quantile(0.5)) * 1000, 2),
        "batch_latency_p95_ms": round(float(times_t.quantile(0.95)) * 1000, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
    }
    if device.startswith("cuda"):
        result["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    return result


def machine(device: str) -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``benchmark``'s options."""
    p.add_argument("--teachers", nargs="+", default=["wide_resnet50_2", "efficientnet_lite0"], help="teachers")
    p.add_argument("--image_sizes", type=int, nargs="+", default=[128, 224], help="input sizes")
    p.add_argument("--shots", type=int, nargs="+", default=[2, 4, 8], help="numbers of references K")
    p.add_argument("--patterns", nargs="+", choices=PATTERNS, default=list(PATTERNS), help="scoring patterns")
    p.add_argument(
        "--precisions", nargs="+", choices=sorted(PRECISIONS), default=["fp32"], help="autocast (bf16, fp16: CUDA)"
    )
    p.add_argument(
        "--compile_backends",
        nargs="+",
        default=["none"],
        help="'none' (eager) and/or torch.compile backends (inductor), each timed as its own configuration",
    )
    p.add_argument("--batch_size", type=int, default=16, help="queries per batch")
    p.add_argument("--batches", type=int, default=4, help="timed batches per configuration (after one warm-up)")
    p.add_argument("--device", default=str(default_device()), help="cuda or cpu")
    p.add_argument(
        "--in_process",
        action="store_true",
        help="run every configuration in this process (no process start each; peak GPU memory is still per "
        "configuration, peak RSS is not)",
    )
    p.add_argument("--output", default=None, help="JSON file for the results")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # run a single configuration here


CONFIG_KEYS = ("teacher", "image_size", "shots", "pattern", "precision", "compile_backend")


def configurations(args: argparse.Namespace) -> list[dict]:
    """Every combination of the options' values, as ``measure``'s keyword arguments."""
    check_precisions(args.device, args.precisions)
    backends = [None if b == "none" else b for b in args.compile_backends]
    grid = itertools.product(args.teachers, args.image_sizes, args.shots, args.patterns, args.precisions, backends)
    return [dict(zip(CONFIG_KEYS, values)) for values in grid]


def _in_subprocess(config: dict, args: argparse.Namespace) -> dict:
    """``measure`` in a fresh process, so that its peak RSS is its own."""
    cmd = [sys.executable, "-m", "monai_d2fad.benchmark", "--one", "--device", args.device]
    cmd += ["--batch_size", str(args.batch_size), "--batches", str(args.batches)]
    cmd += ["--teachers", config["teacher"], "--image_sizes", str(config["image_size"])]
    cmd += ["--shots", str(config["shots"]), "--patterns", config["pattern"], "--precisions", config["precision"]]
    cmd += ["--compile_backends", config["compile_backend"] or "none"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> dict:
    """Time every configuration, each in a fresh process (clean peak memory) unless ``--in_process``."""
    grid = configurations(args)
    if args.one:
        print(json.dumps(measure(**grid[0], batch_size=args.batch_size, batches=args.batches, device=args.device)))
        return {}
    rows = []
    print(
        f"{'teacher':18} {'size':>4} {'K':>2} {'pattern':9} {'prec':4} {'compiled':8} {'q/s':>9} {'p50 ms':>8} "
        f"{'p95 ms':>8} {'RSS GB':>7} {'GPU GB':>7}"
    )
    for config in grid:
        if args.in_process:
            row = measure(**config, batch_size=args.batch_size, batches=args.batches, device=args.device)
        else:
            row = _in_subprocess(config, args)
        rows.append(row)
        save_report({"machine": machine(args.device), "results": rows}, args.output)  # a stopped run keeps its rows
        print(
            f"{row['teacher']:18} {row['image_size']:4d} {row['shots']:2d} {row['pattern']:9} {row['precision']:4} "
            f"{row['compiled']!s:8} {row['queries_per_s']:9.2f} {row['batch_latency_p50_ms']:8.1f} "
            f"{row['batch_latency_p95_ms']:8.1f} {row['peak_rss_gb']:7.2f} {row.get('peak_gpu_memory_gb', '-'):>7}",
            flush=True,
        )
    twin_keys = ("teacher", "image_size", "shots", "precision", "compiled")
    for row in rows:
        if row["pattern"] == "cached":
            twin = [r for r in rows if r["pattern"] == "official" and all(r[k] == row[k] for k in twin_keys)]
            if twin:
                row["speedup_vs_official"] = round(row["queries_per_s"] / twin[0]["queries_per_s"], 2)
    return save_report({"machine": machine(args.device), "results": rows}, args.output)


def main(argv: list[str] | None = None) -> dict:
    return command_main(__doc__, add_arguments, run, argv)


def save_report(report: dict, path: str | None) -> dict:
    """Write a benchmark's ``report`` as JSON to ``path`` (if given); returns it."""
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
