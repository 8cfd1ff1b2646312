"""How D²4FAD's training defaults were chosen: leave-one-task-out on the ``val`` splits, never on ``test``.

For each held-out task, a student and learn-to-weight are trained on the other tasks' ``train/good`` images (the
teacher's features cached once: Lite0, or a setting's ``teacher``; 300 images per task, 128 px, batch 16, K = 4)
and the held-out task's ``val`` split is scored against 3 draws of K = 4 references from its ``train/good``.
Printed per configuration: the val AUROC (%) per held-out task and their mean, the last teacher-student (tsd) and
self-distillation (ssd) losses, the mean top learn-to-weight weight (0.25 is uniform), and the mean over tasks of
image-level variants (map score with the mean and the max, global discrepancy of the student / teacher, map +
weight x global).

    python scripts/val_choices.py configs/val_choices/training_defaults.json   # the five settings of RESULTS.md
    python scripts/val_choices.py --data_dir ../shared/data/medfsad \\
        '[{"output": "relu", "lr": 1e-4, "lam": 0.1}, {"output": "linear", "lr": 1e-3, "lam": 1.0, "sim": "cosine"}]'
    python scripts/val_choices.py configs/val_choices/teachers.json   # the defaults with the Lite1 and Lite2 teachers
    python scripts/val_choices.py configs/val_choices/loss_reduction.json   # the official flattened cosine
    python scripts/val_choices.py configs/val_choices/levels.json   # which teacher features are distilled
    python scripts/val_choices.py configs/val_choices/steps.json   # training length and learning-rate schedule
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from monai_d2fad.data import ImageDataset, discover_tasks
from monai_d2fad.losses import DualDistillationLoss
from monai_d2fad.metrics import anomaly_metrics
from monai_d2fad.networks.d2fad import D2FADOutput
from monai_d2fad.networks.decoder import decoder_for, split_levels
from monai_d2fad.networks.learn_to_weight import build_l2w
from monai_d2fad.networks.teachers import build_teacher
from monai_d2fad.scoring import anomaly_map, global_discrepancy, image_score, support_distance

SIZE, K, BATCH, PER_TASK = 128, 4, 16, 300
WEIGHTS = (0.25, 0.5, 1, 2)


def teacher_features(data_dir: str, cache: str, teacher_name: str = "efficientnet_lite0") -> dict:
    """The teacher's features of each task's first 300 train/good images and of its val split, cached in ``cache``."""
    if os.path.isfile(cache):
        return torch.load(cache, weights_only=True)
    teacher, feats = build_teacher(teacher_name), {}
    for name, task in discover_tasks(data_dir).items():
        for split, items in (("train", task.normal("train")[:PER_TASK]), ("val", task.items("val"))):
            images = ImageDataset(items, SIZE, progress=False)
            x = torch.stack([images[i]["image"] for i in range(len(images))])
            out = [teacher(x[i : i + 64]) for i in range(0, len(x), 64)]
            labels = torch.tensor([it["label"] for it in images.items])
            feats[f"{name}/{split}"] = {"feats": [torch.cat(s) for s in zip(*out)], "labels": labels}
    torch.save(feats, cache)
    return feats


def distilled(data: dict, teacher: str, levels: str) -> tuple[dict, int]:
    """The cached teacher features as D²4FAD's ``levels`` uses them, three distilled scales then the student's input
    (``decoder.split_levels``), and the head's channels (0 for ``shallow``)."""
    if levels == "shallow":
        return data, 0
    net, levels_data = build_teacher(teacher), {}
    with torch.no_grad():
        for key, value in data.items():
            scales, student_input = split_levels(net, value["feats"], levels)
            levels_data[key] = {**value, "feats": [*scales, student_input]}
    return levels_data, net.head_channels


def run(
    data: dict,
    held: str,
    output="linear",
    lr=1e-3,
    lam=1.0,
    sim="dot",
    steps=300,
    seed=0,
    detach=False,
    teacher="efficientnet_lite0",
    reduction="location",
    levels="shallow",
    schedule="constant",
) -> dict:
    channels = tuple(f.shape[1] for f in next(iter(data.values()))["feats"])
    data, head_channels = distilled(data, teacher, levels)
    torch.manual_seed(seed)
    tasks = sorted({k.split("/")[0] for k in data} - {held})
    feats = [torch.cat([data[f"{t}/train"]["feats"][i] for t in tasks]) for i in range(4)]
    groups = torch.cat([torch.full((len(data[f"{t}/train"]["labels"]),), j) for j, t in enumerate(tasks)])
    pools = [torch.nonzero(groups == j).flatten() for j in range(len(tasks))]
    student = decoder_for(teacher, channels, output, levels, head_channels)
    l2w = build_l2w("dot", tuple(f.shape[1] for f in feats[:3]), sim)
    optimizer = torch.optim.Adam([*student.parameters(), *l2w.parameters()], lr=lr, betas=(0.5, 0.999))
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps) if schedule == "cosine" else None
    loss_fn, tsd, ssd = DualDistillationLoss(lam=lam, reduction=reduction), [], []
    for _ in range(steps):
        q = torch.randint(0, len(groups), (BATCH,))
        s = torch.stack([(p := pools[groups[i]])[p != i][torch.randperm(len(p) - 1)[:K]] for i in q.tolist()])
        out = student(feats[3][torch.cat([q, s.flatten()])])
        sq, ss = [f[:BATCH] for f in out], [f[BATCH:].unflatten(0, (BATCH, K)) for f in out]
        if detach:  # stop the self-distillation gradient into the references' side
            ss = [f.detach() for f in ss]
        losses = loss_fn.terms(D2FADOutput([f[q] for f in feats[:3]], sq, ss, l2w(sq, ss), l2w.aggregate))
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        if decay is not None:
            decay.step()
        tsd.append(float(losses["tsd"]))
        ssd.append(float(losses["ssd"]))
    student.eval()
    rows, top = [], []
    with torch.no_grad():
        train, val = data[f"{held}/train"]["feats"], data[f"{held}/val"]
        for draw in range(3):
            idx = torch.randperm(len(train[0]), generator=torch.Generator().manual_seed(100 + draw))[:K]
            support = [f.unsqueeze(0) for f in student(train[3][idx])]
            query = student(val["feats"][3])
            w = [l2w.weights(i, q, l2w.keys(i, f)) for i, (q, f) in enumerate(zip(query, support))]
            d = [support_distance(q, f, wi, l2w.aggregate) for q, f, wi in zip(query, support, w)]
            amap = anomaly_map(d, (SIZE, SIZE))
            local, local_max = image_score(amap, "mean"), image_score(amap, "max")
            g_student = global_discrepancy(query, [f[0] for f in support])
            g_teacher = global_discrepancy(val["feats"][:3], [f[idx] for f in train[:3]])
            scores = [local, local_max, g_student, g_teacher, *[local + a * g_teacher for a in WEIGHTS]]
            rows.append([anomaly_metrics(x, val["labels"])["auroc"] for x in scores])
            top.append(float(torch.stack(w).mean(0).max(1).values.mean()))
    return {"auroc": np.mean(rows, 0), "tsd": np.mean(tsd[-20:]), "ssd": np.mean(ssd[-20:]), "top": np.mean(top)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "configs",
        help="JSON list of settings (output, lr, lam, sim, steps, detach, teacher, reduction, levels, "
        "schedule: constant or cosine), or a file "
        "holding one",
    )
    p.add_argument("--data_dir", default="../shared/data/medfsad")
    p.add_argument("--cache", default="runs/val_choices_features.pt", help="Lite0's; other teachers' get a suffix")
    args = p.parse_args()
    settings = args.configs
    if os.path.isfile(settings):  # e.g. configs/val_choices/training_defaults.json
        with open(settings, encoding="utf-8") as f:
            settings = f.read()
    for config in json.loads(settings):
        teacher = config.get("teacher", "efficientnet_lite0")
        cache = args.cache if teacher == "efficientnet_lite0" else args.cache.replace(".pt", f"_{teacher}.pt")
        data = teacher_features(args.data_dir, cache, teacher)
        held_out = sorted({k.split("/")[0] for k in data})
        start = time.perf_counter()
        results = [run(data, held, **config) for held in held_out]
        local = [100 * r["auroc"][0] for r in results]
        print(json.dumps(config), "val", " ".join(f"{a:.1f}" for a in local), f"mean {np.mean(local):.1f}")
        print(
            "  tsd", " ".join(f"{r['tsd']:.2f}" for r in results), "ssd", " ".join(f"{r['ssd']:.3f}" for r in results)
        )
        print("  top weight", " ".join(f"{r['top']:.2f}" for r in results), f"({time.perf_counter() - start:.0f} s)")
        extra = 100 * np.mean([r["auroc"] for r in results], 0)
        print(
            "  mean over tasks: map (mean), map (max), global student, global teacher, map + w x global teacher, w =",
            WEIGHTS,
        )
        print("   ", " ".join(f"{v:.1f}" for v in extra), flush=True)


if __name__ == "__main__":
    main()
