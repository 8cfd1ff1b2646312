"""Speed and memory of scoring: cached references (this project) against the official pattern (references
re-encoded with every batch, K + 1 passes per query), in the same run on the same machine.

    python -m monai_d2fad.benchmark --output benchmark.json

Each configuration (teacher x image size x K x pattern) runs in its own process so that its peak memory is its
own. Teachers get random weights (speed does not depend on them), except the offline Lite0 weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import torch

from monai_d2fad.devices import default_device
from monai_d2fad.options import command_main

__all__ = ["add_arguments", "machine", "main", "measure", "run", "save_report"]

PATTERNS = ("cached", "official")


def measure(
    teacher: str, image_size: int, shots: int, pattern: str, batch_size: int, batches: int, device: str
) -> dict:
    """Time ``batches`` batches (after one warm-up) of one configuration in this process."""
    from monai_d2fad.methods import D2FADDetector
    from monai_d2fad.networks import D2FAD

    torch.manual_seed(0)
    weights = "imagenet" if teacher == "efficientnet_lite0" else None
    model = D2FAD(teacher, teacher_weights=weights).to(device).eval()
    support = torch.rand(shots, 3, image_size, image_size, device=device)
    queries = torch.rand(batches + 1, batch_size, 3, image_size, image_size, device=device)
    if pattern == "cached":
        detector = D2FADDetector(model).set_support(support)
        run = detector.score
    else:

        def run(q: torch.Tensor):
            with torch.inference_mode():
                return model.score_output(model(q, support.expand(q.shape[0], -1, -1, -1, -1)), q.shape[-2:])

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(batches + 1):
        start = time.perf_counter()
        run(queries[i])
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i:  # the first batch warms up
            times.append(time.perf_counter() - start)
    times_t = torch.tensor(times)
    result = {
        "teacher": teacher,
        "image_size": image_size,
        "shots": shots,
        "pattern": pattern,
        "batch_size": batch_size,
        "batches": batches,
        "queries_per_s": round(batch_size * batches / sum(times), 2),
        "batch_latency_p50_ms": round(float(times_t.quantile(0.5)) * 1000, 1),
        "batch_latency_p95_ms": round(float(times_t.quantile(0.95)) * 1000, 1),
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
    p.add_argument("--batch_size", type=int, default=16, help="queries per batch")
    p.add_argument("--batches", type=int, default=4, help="timed batches per configuration (after one warm-up)")
    p.add_argument("--device", default=str(default_device()), help="cuda or cpu")
    p.add_argument("--output", default=None, help="JSON file for the results")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # run a single configuration here


def run(args: argparse.Namespace) -> dict:
    """Time every configuration, each in a fresh process (clean peak memory)."""
    if args.one:
        print(
            json.dumps(
                measure(
                    args.teachers[0],
                    args.image_sizes[0],
                    args.shots[0],
                    args.patterns[0],
                    args.batch_size,
                    args.batches,
                    args.device,
                )
            )
        )
        return {}
    rows = []
    print(f"{'teacher':18} {'size':>4} {'K':>2} {'pattern':9} {'q/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'RSS GB':>7}")
    for teacher in args.teachers:
        for size in args.image_sizes:
            for k in args.shots:
                for pattern in args.patterns:
                    cmd = [
                        sys.executable,
                        "-m",
                        "monai_d2fad.benchmark",
                        "--one",
                        "--teachers",
                        teacher,
                        "--image_sizes",
                        str(size),
                        "--shots",
                        str(k),
                        "--patterns",
                        pattern,
                        "--batch_size",
                        str(args.batch_size),
                        "--batches",
                        str(args.batches),
                        "--device",
                        args.device,
                    ]
                    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
                    row = json.loads(done.stdout.strip().splitlines()[-1])
                    rows.append(row)
                    print(
                        f"{teacher:18} {size:4d} {k:2d} {pattern:9} {row['queries_per_s']:8.2f} "
                        f"{row['batch_latency_p50_ms']:8.1f} {row['batch_latency_p95_ms']:8.1f} "
                        f"{row['peak_rss_gb']:7.2f}",
                        flush=True,
                    )
    for row in rows:
        if row["pattern"] == "cached":
            twin = [
                r
                for r in rows
                if r["pattern"] == "official" and all(r[key] == row[key] for key in ("teacher", "image_size", "shots"))
            ]
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
