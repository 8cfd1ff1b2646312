"""Decision thresholds for image scores, chosen without test labels.

- ``"loo"``: leave-one-out over the K normal references: each reference is scored against the other K - 1 and
  the threshold is the highest of these normal scores, so every reference would be called normal.
  Needs no labels, but only K normal samples: expect some normal images above it (a conservative start).
- ``"validation"``: the threshold with the best F1 on a labelled validation folder (``good/`` plus abnormal
  kind folders) of the same task.
"""

from __future__ import annotations

import torch

from monai_d2fad.data.images import ImageDataset
from monai_d2fad.data.tasks import folder_items
from monai_d2fad.methods.base import Detector, TaskDetector
from monai_d2fad.metrics import anomaly_metrics, best_f1_threshold

__all__ = ["calibrate_threshold", "leave_one_out_scores"]


def leave_one_out_scores(detector: Detector, support: torch.Tensor) -> torch.Tensor:
    """Score of each reference ``support[k]`` against the other K - 1 references (K >= 2)."""
    k = support.shape[0]
    if k < 2:
        raise ValueError("leave-one-out calibration needs at least 2 normal references")
    scores = []
    for i in range(k):
        others = torch.cat([support[:i], support[i + 1 :]])
        state = detector.fit(others)  # outside inference mode: a detector may train on its references
        with torch.inference_mode():
            scores.append(detector.detect_images(support[i : i + 1], state).scores)
    return torch.cat(scores).cpu()


def calibrate_threshold(
    detector: TaskDetector,
    support: torch.Tensor | None,
    validation_dir: str | None = None,
    modality: str | None = None,
    image_size: int = 128,
    batch_size: int = 16,
) -> dict:
    """``{"method", "value", ...}``: from ``validation_dir`` when given (best F1), else leave-one-out over
    ``support`` (the reference images)."""
    if validation_dir is None:
        if support is None:
            raise ValueError("leave-one-out calibration needs the reference images")
        loo = leave_one_out_scores(detector, support)
        return {"method": "loo", "value": float(loo.max()), "normal_scores": loo.tolist()}
    items = folder_items(validation_dir, modality=modality or "generic")
    data = ImageDataset(items, image_size=image_size, modality=modality, progress=False)
    scores = torch.cat(
        [
            detector.score(torch.stack([data[j]["image"] for j in range(i, min(i + batch_size, len(data)))]))[0].cpu()
            for i in range(0, len(data), batch_size)
        ]
    )
    labels = torch.tensor([it["label"] for it in data.items])
    value, f1 = best_f1_threshold(scores, labels)
    return {
        "method": "validation",
        "value": value,
        "f1": f1,
        "folder": validation_dir,
        "metrics": anomaly_metrics(scores, labels),
        "count": len(labels),
    }
