"""Which of the teacher's features are worth distilling: each Lite0 stage compared on ``val``, with no student.

D²4FAD scores a query by comparing its student features with its references' location by location; a student that
learns its teacher well gives about the teacher's own comparison. This measures that comparison for each of the
teacher's four stages (strides 4, 8, 16, 32; the cached features of ``val_choices.py``): each task's ``val`` split
against 3 draws of K = 4 references from its ``train/good``. No training, no ``test`` split. Printed per task and
stride, val AUROC (%) of the image score (the map's mean) for

- ``location``: ``1 - cos`` to the references' mean feature at the same location (Eq. 2 with equal weights);
- ``nearest``: ``1 - cos`` to the nearest location of any reference (PatchCore's match);
- ``global``: ``1 - cos`` of the pooled features to the nearest reference (ImageNN's, one stride).

    python scripts/val_teacher_levels.py   # output: docs/results/val_teacher_levels.txt
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from val_choices import K, teacher_features
from val_scoring_choices import nearest_distances

from monai_d2fad.metrics import anomaly_metrics
from monai_d2fad.scoring import cosine_distance, global_discrepancy

STRIDES = (4, 8, 16, 32)


def comparisons(query: torch.Tensor, support: torch.Tensor) -> dict[str, torch.Tensor]:
    """Image scores ``[B]`` of ``query [B, C, h, w]`` against ``support [K, C, h, w]``, one per comparison."""
    query, support = query.float(), support.float()
    return {
        "location": cosine_distance(query, support.mean(0, keepdim=True)).mean((1, 2)),
        "nearest": nearest_distances([query], [support.unsqueeze(0)])[0].mean((1, 2)),
        "global": global_discrepancy([query], [support]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default="../shared/data/medfsad")
    p.add_argument("--cache", default="runs/val_choices_features.pt")
    args = p.parse_args()
    data = teacher_features(args.data_dir, args.cache)
    for task in sorted({k.split("/")[0] for k in data}):
        train, val = data[f"{task}/train"]["feats"], data[f"{task}/val"]
        aurocs: dict[tuple[str, int], list[float]] = {}
        for draw in range(3):
            idx = torch.randperm(len(train[0]), generator=torch.Generator().manual_seed(100 + draw))[:K]
            for stride, q, s in zip(STRIDES, val["feats"], train):
                for name, score in comparisons(q, s[idx]).items():
                    aurocs.setdefault((name, stride), []).append(100 * anomaly_metrics(score, val["labels"])["auroc"])
        print(task)
        for name in ("location", "nearest", "global"):
            cells = " ".join(f"{np.mean(aurocs[name, stride]):5.1f}" for stride in STRIDES)
            print(f"  {name:9s} strides 4/8/16/32: {cells}")


if __name__ == "__main__":
    main()
