"""Training speed: episodes per second with the teacher run on every episode against cached teacher features.

    python -m monai_d2fad.training_benchmark --data_dir ../shared/data/medfsad --teacher efficientnet_lite0

Both runs train the same model on the same episodes (the bundle's loss and optimiser), one after the other in this
process; the cached run also reports the one-time cost of encoding every training image with the teacher. A timed
step moves its batch to the device (the trainer's ``prepare_batch``), trains, and waits for the GPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from monai_d2fad.benchmark import machine, save_report
from monai_d2fad.devices import PRECISIONS, autocast, check_precisions, default_device
from monai_d2fad.options import command_main

__all__ = ["add_arguments", "main", "measure_training", "run"]


def measure_training(
    data_dir: str | None,
    teacher: str,
    image_size: int,
    shots: int,
    batch_size: int,
    steps: int,
    cached: bool,
    max_per_task: int,
    device: str = "cpu",
    precision: str = "fp32",
) -> dict:
    """Time ``steps`` training steps (after one warm-up step) of D²4FAD on episodes of ``data_dir``'s tasks."""
    from monai_d2fad.data import EpisodeDataset, TeacherFeatureCache, discover_or_make_synthetic
    from monai_d2fad.engines import EpisodeBatch
    from monai_d2fad.losses import DualDistillationLoss
    from monai_d2fad.networks import D2FAD

    torch.manual_seed(0)
    tasks = discover_or_make_synthetic(data_dir or tempfile.mkdtemp(), size=image_size)
    model = D2FAD(teacher, teacher_weights="imagenet" if teacher == "efficientnet_lite0" else None).to(device)
    start = time.perf_counter()
    features = TeacherFeatureCache(model.teacher, progress=False) if cached else None
    dataset = EpisodeDataset(
        list(tasks.values()), shots, image_size=image_size, max_per_task=max_per_task, teacher_features=features
    )
    setup = time.perf_counter() - start
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)
    loss_fn = DualDistillationLoss()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3, betas=(0.5, 0.999))
    scaler = torch.amp.GradScaler(torch.device(device).type, enabled=precision == "fp16")  # as MONAI's AMP
    prepare = EpisodeBatch()
    model.train()
    times, batches = [], iter(loader)
    for i in range(steps + 1):
        batch = next(batches, None) or next(batches := iter(loader))
        begin = time.perf_counter()
        query, _, (support,), _ = prepare(batch, device)
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            loss = loss_fn(model(query, support))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        if i:  # the first step warms up
            times.append(time.perf_counter() - begin)
    return {
        "teacher": teacher,
        "image_size": image_size,
        "shots": shots,
        "batch_size": batch_size,
        "cached": cached,
        "device": str(device),
        "precision": precision,
        "training_images": len(dataset),
        "setup_seconds": round(setup, 1),
        "episodes_per_s": round(batch_size * steps / sum(times), 2),
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``benchmark-training``'s options."""
    p.add_argument("--data_dir", default=None, help="folder of tasks (default: synthetic tasks in a temp folder)")
    p.add_argument("--teacher", default="efficientnet_lite0", help="teacher network")
    p.add_argument("--image_size", type=int, default=128, help="input size")
    p.add_argument("--shots", type=int, default=4, help="references per episode")
    p.add_argument("--batch_size", type=int, default=16, help="episodes per step")
    p.add_argument("--steps", type=int, default=20, help="timed steps per run (after one warm-up step)")
    p.add_argument("--max_per_task", type=int, default=100, help="training images per task")
    p.add_argument("--device", default=str(default_device()), help="cuda or cpu")
    p.add_argument("--precision", choices=sorted(PRECISIONS), default="fp32", help="autocast (bf16, fp16: CUDA)")
    p.add_argument("--output", default=None, help="JSON file for the results")


def run(args: argparse.Namespace) -> dict:
    """Training episodes/s with the teacher every episode, then with cached teacher features."""
    check_precisions(args.device, [args.precision])
    settings = (args.teacher, args.image_size, args.shots, args.batch_size, args.steps)
    rows = [
        measure_training(args.data_dir, *settings, cached, args.max_per_task, args.device, args.precision)
        for cached in (False, True)
    ]
    speedup = round(rows[1]["episodes_per_s"] / rows[0]["episodes_per_s"], 2)
    for row in rows:
        label = "cached teacher features" if row["cached"] else "teacher every episode"
        print(f"{label:24} {row['episodes_per_s']:8.2f} episodes/s  (set-up {row['setup_seconds']} s)")
    print(f"speed-up x{speedup}")
    return save_report({"machine": machine(args.device), "results": rows, "speedup": speedup}, args.output)


def main(argv: list[str] | None = None) -> dict:
    return command_main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    main()
