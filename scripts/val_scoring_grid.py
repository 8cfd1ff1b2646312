"""How much D²4FAD's scoring settings matter, on ``val`` (never ``test``), for the network the protocol keeps.

The network is the protocol's leave-one-task-out model (``--checkpoint``; at 128 px the selection kept the network
as initialised for every held-out task, so one checkpoint serves all four). Each task's ``val`` split is scored
against 3 draws of K = 4 references from its ``train/good`` (``val_scoring_choices.reference_draws``) at
``--image_size``, under every combination of:

- learn-to-weight inverse temperature of the cosine similarity (the model's is 10; 0 = equal weights);
- ``feature`` (Eq. 5: distance to the weighted reference) or ``distance`` (Eq. 2: weighted mean of distances);
- which student scales are summed (``012`` all three; ``2`` the stride-16 one alone; ...);
- ``sum`` or ``product`` of the scale maps, the blur ``sigma``, and the image score (``mean``, ``max``, or the
  mean of the top 10 % / 1 % of the map).

Written: val AUROC (%) per task for every combination, keyed by the tuple of settings.

    python scripts/val_scoring_grid.py 128 \
        --checkpoint runs/medfsad_v7/models/default/brain_tumor_mri/train_4-shot/models/model.pt \
        --output docs/results/val_scoring_grid_128.json   # and 224
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from val_scoring_choices import encoded_val, reference_draws

from monai_d2fad.checkpoint import load_checkpoint
from monai_d2fad.data import discover_tasks
from monai_d2fad.data.images import read_images
from monai_d2fad.methods.d2fad import D2FADDetector
from monai_d2fad.metrics import anomaly_metrics
from monai_d2fad.networks.learn_to_weight import LearnToWeight
from monai_d2fad.scoring import anomaly_map, image_score, support_distance

TEMPERATURES_AGGREGATES = [
    (10, "feature"),
    (0, "feature"),
    (0, "distance"),
    (30, "feature"),
    (100, "feature"),
    (3, "feature"),
    (10, "distance"),
]
SCALES = ["012", "2", "12", "0"]
MAPS = [("sum", 4), ("sum", 0), ("product", 4), ("sum", 8)]
REDUCTIONS = ["mean", "max", "top0.1", "top0.01"]


def weights(
    l2w: LearnToWeight, scale: int, query: torch.Tensor, keys: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Softmax over the references of the model's learn-to-weight cosine times ``temperature`` (0: equal weights)."""
    cosine = l2w.logits(scale, query, keys) / l2w.log_scale[scale].exp()  # the model's logits at temperature 1
    if temperature > 0:
        return torch.softmax(cosine * temperature, -1)
    return torch.full_like(cosine, 1 / cosine.shape[-1])


def image_scores(maps: torch.Tensor, reduction: str) -> torch.Tensor:
    """``scoring.image_score`` (``mean``, ``max``), or the mean of the map's top fraction (``top0.1``: 10 %)."""
    if not reduction.startswith("top"):
        return image_score(maps, reduction)
    flat = maps.flatten(1)
    k = max(1, int(float(reduction[3:]) * flat.shape[1]))
    return flat.topk(k, 1).values.mean(1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image_size", type=int)
    p.add_argument("--data_dir", default="../shared/data/medfsad")
    p.add_argument("--checkpoint", required=True, help="the kept model, e.g. runs/medfsad_v7/models/default/<task>/...")
    p.add_argument("--output", required=True)
    args = p.parse_args()
    size, out = args.image_size, {}
    detector = D2FADDetector(load_checkpoint(args.checkpoint))
    l2w = detector.model.l2w
    for name, task in sorted(discover_tasks(args.data_dir).items()):
        encoded, labels = encoded_val(detector, task, size, batch=32)
        found: dict[str, list[float]] = {}
        with torch.no_grad():
            for paths in reference_draws(task):
                refs = detector.fit(read_images(paths, task.modality, size))
                for temperature, aggregate in TEMPERATURES_AGGREGATES:
                    scores: dict[tuple, list[torch.Tensor]] = {}
                    for enc in encoded:
                        distances = [
                            support_distance(q, s, weights(l2w, i, q, refs.keys[i], temperature), aggregate)
                            for i, (q, s) in enumerate(zip(enc.student, refs.features))
                        ]
                        for scales in SCALES:
                            for combine, sigma in MAPS:
                                maps = anomaly_map([distances[int(c)] for c in scales], (size, size), combine, sigma)
                                for reduction in REDUCTIONS:
                                    if reduction == "mean" and sigma != 4:
                                        continue  # the blur hardly changes a map's mean
                                    key = (temperature, aggregate, scales, combine, sigma, reduction)
                                    scores.setdefault(key, []).append(image_scores(maps, reduction))
                    for key, values in scores.items():
                        found.setdefault(str(key), []).append(100 * anomaly_metrics(torch.cat(values), labels)["auroc"])
        out[name] = {k: float(np.mean(v)) for k, v in found.items()}
        default = out[name][str((10, "feature", "012", "sum", 4, "mean"))]
        print(name, "the model's own settings:", round(default, 1), flush=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
