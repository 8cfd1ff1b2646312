"""Which input size D²4FAD scores best at, measured on ``val`` (never ``test``), against ImageNN at the same size.

The network is the one the protocol's selection kept for every held-out task: the bundle's D²4FAD (with the
teacher given) as its training starts (``protocol.training.initial_network``, seeded as the bundle seeds it). It
is fully convolutional, so it scores any multiple of 32. For each size and task, the task's ``val`` split is
scored against 3 draws of K = 4 references from its ``train/good`` (``val_scoring_choices.reference_draws``), by
D²4FAD (the paper's map, its mean) and by the image-level nearest neighbour on the same teacher (``ImageNN``).
Printed and written: val AUROC in %, per size, method and task, and the mean over the four tasks.

    python scripts/val_image_size.py --output docs/results/val_image_size.json   # Lite0: 128 192 224 256
    python scripts/val_image_size.py --teacher efficientnet_lite2 --sizes 224 256 \
        --output docs/results/val_image_size_lite2.json   # the other offline teachers (and efficientnet_lite1)
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from val_scoring_choices import encoded_val, reference_draws

from monai_d2fad.data import discover_tasks
from monai_d2fad.data.images import read_images
from monai_d2fad.methods.base import Detector
from monai_d2fad.methods.d2fad import D2FADDetector
from monai_d2fad.methods.image_nn import ImageNearestNeighbour
from monai_d2fad.metrics import anomaly_metrics
from monai_d2fad.protocol.training import initial_network


def val_auroc(detector: Detector, task, size: int) -> float:
    """Mean val AUROC (%) of ``detector`` on ``task`` at ``size`` over the reference draws."""
    encoded, labels = encoded_val(detector, task, size)
    with torch.no_grad():
        found = []
        for paths in reference_draws(task):
            refs = detector.fit(read_images(paths, task.modality, size))
            scores = torch.cat([detector.detect(e, refs, (size, size)).scores for e in encoded])
            found.append(100 * anomaly_metrics(scores, labels)["auroc"])
    return float(np.mean(found))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default="../shared/data/medfsad")
    p.add_argument("--teacher", default="efficientnet_lite0")
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 192, 224, 256])
    p.add_argument("--output", required=True)
    args = p.parse_args()
    tasks = discover_tasks(args.data_dir)
    detectors = {
        "D2FAD": D2FADDetector(initial_network({"teacher": args.teacher})),
        "ImageNN": ImageNearestNeighbour(args.teacher),
    }
    results: dict[str, dict] = {}
    for size in args.sizes:
        per_method = {
            m: {name: val_auroc(d, task, size) for name, task in sorted(tasks.items())} for m, d in detectors.items()
        }
        for values in per_method.values():
            values["mean"] = float(np.mean(list(values.values())))
        results[str(size)] = per_method
        print(size, {m: {t: round(v, 1) for t, v in r.items()} for m, r in per_method.items()}, flush=True)
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
