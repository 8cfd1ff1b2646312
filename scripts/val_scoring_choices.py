"""How D²4FAD's trained models score on ``val`` with other comparisons of a query to its references (never ``test``).

For each held-out task, the protocol's leave-one-task-out checkpoint (trained on the other three tasks) scores the
held-out task's ``val`` split against 3 draws of K = 4 references from its ``train/good``. Printed: val AUROC (%) per
task and the mean, for each way of comparing student features of the query with the references':

- ``paper``: learn-to-weight's weighted reference, location by location (Eq. 5), the map's mean;
- ``nearest``: at each query location the nearest reference location of any reference (a PatchCore-style match on
  the student's features instead of the teacher's), the map's mean;
- ``nearest_max``: the same, the map's maximum;
- ``teacher_student``: the query's own teacher-student discrepancy (RD4AD's map, from the student D²4FAD trains
  with its teacher-student term), the map's mean;
- ``paper+teacher_student``: the sum of the two maps, the mean.

    python scripts/val_scoring_choices.py --models runs/medfsad_v3/models/default --output docs/results/val_scoring.json
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

from monai_d2fad.checkpoint import load_checkpoint
from monai_d2fad.data import discover_tasks
from monai_d2fad.data.images import read_images
from monai_d2fad.methods.base import Detector
from monai_d2fad.methods.d2fad import D2FADDetector
from monai_d2fad.metrics import anomaly_metrics
from monai_d2fad.scoring import anomaly_map, image_score

K, DRAWS, SIZE, BATCH = 4, 3, 128, 16


def nearest_distances(query: list[torch.Tensor], support: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per scale, ``1 - cos`` of each query location ``[B, C, h, w]`` to its nearest location of any reference
    (``support`` ``[1, K, C, h, w]``): ``[B, h, w]``."""
    out = []
    for q, s in zip(query, support):
        q = F.normalize(q.float(), dim=1)
        s = F.normalize(s[0].float(), dim=1).permute(1, 0, 2, 3).flatten(1)  # [C, K*h*w]
        sim = torch.einsum("bchw,cn->bhwn", q, s)
        out.append(1 - sim.amax(-1))
    return out


def reference_draws(task) -> list[list[str]]:
    """``DRAWS`` lists of K normal references from the task's ``train/good``, the same on every call."""
    normal = [i["image"] for i in task.normal("train")]
    rng = np.random.default_rng([7, len(task.name)])
    return [[normal[j] for j in rng.choice(len(normal), K, replace=False)] for _ in range(DRAWS)]


def encoded_val(detector: Detector, task, size: int = SIZE, batch: int = BATCH) -> tuple[list, list[int]]:
    """The task's ``val`` images read at ``size`` and encoded by ``detector`` in batches of ``batch``, and their
    labels: what every draw of references is scored against."""
    items = task.items("val")
    images = read_images([i["image"] for i in items], task.modality, size)
    with torch.no_grad():
        encoded = [detector.encode(images[i : i + batch]) for i in range(0, len(images), batch)]
    return encoded, [i["label"] for i in items]


def score_task(detector: D2FADDetector, task, draws: list[list[str]]) -> dict[str, list[float]]:
    encoded, labels = encoded_val(detector, task)
    names = ("paper", "nearest", "nearest_max", "teacher_student", "paper+teacher_student")
    found: dict[str, list[float]] = {name: [] for name in names}
    model = detector.model
    for paths in draws:
        refs = detector.fit(read_images(paths, task.modality, SIZE))
        scores = {name: [] for name in found}
        with torch.no_grad():
            for enc in encoded:
                paper = detector.detect(enc, refs, (SIZE, SIZE)).maps
                scores["paper"].append(image_score(paper, "mean"))
                own = [1 - F.cosine_similarity(t.float(), st.float(), dim=1) for t, st in zip(enc.teacher, enc.student)]
                own = anomaly_map(own, (SIZE, SIZE), model.config["map_combine"], model.config["sigma"])
                scores["teacher_student"].append(image_score(own, "mean"))
                scores["paper+teacher_student"].append(image_score(paper + own, "mean"))
                maps = anomaly_map(
                    nearest_distances(enc.student, refs.features),
                    (SIZE, SIZE),
                    model.config["map_combine"],
                    model.config["sigma"],
                )
                scores["nearest"].append(image_score(maps, "mean"))
                scores["nearest_max"].append(image_score(maps, "max"))
        for name in found:
            found[name].append(100 * anomaly_metrics(torch.cat(scores[name]), labels)["auroc"])
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default="../shared/data/medfsad")
    p.add_argument("--models", required=True, help="the protocol's models/default folder (one per held-out task)")
    p.add_argument("--output", required=True)
    args = p.parse_args()
    torch.manual_seed(0)
    results = {}
    for name, task in sorted(discover_tasks(args.data_dir).items()):
        checkpoint = os.path.join(args.models, name, "train_4-shot", "models", "model.pt")
        detector = D2FADDetector(load_checkpoint(checkpoint))
        results[name] = score_task(detector, task, reference_draws(task))
        print(name, {k: round(float(np.mean(v)), 1) for k, v in results[name].items()}, flush=True)
    variants = next(iter(results.values()))
    means = {k: round(float(np.mean([np.mean(r[k]) for r in results.values()])), 1) for k in variants}
    print("mean over the four held-out tasks:", means)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump({"per_task": results, "mean": means}, f, indent=2)


if __name__ == "__main__":
    main()
