"""Settings chosen on the training tasks' ``val`` splits, never on the test task: the global-score weight."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import torch

from monai_d2fad.data.evaluation import EvaluationSet
from monai_d2fad.data.images import ImageDataset
from monai_d2fad.methods.d2fad import D2FADDetector
from monai_d2fad.metrics import anomaly_metrics
from monai_d2fad.networks.d2fad import D2FAD
from monai_d2fad.reference_sets import fit_sets

__all__ = ["GLOBAL_WEIGHTS", "choose_global_weight"]

# candidate weights of the image-level discrepancy added to D²4FAD's map score (0: the paper's score alone)
GLOBAL_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


@torch.inference_mode()
def choose_global_weight(
    model: D2FAD,
    sets: Sequence[EvaluationSet],
    image_size: int,
    batch_size: int = 32,
    weights: Sequence[float] = GLOBAL_WEIGHTS,
) -> tuple[float, dict[float, float]]:
    """The weight of ``weights`` with the best mean image AUROC over ``sets`` (the training tasks' ``val`` sets).

    Each set's queries are scored once, the paper's map score (whatever ``model``'s own weight) and the global
    discrepancy apart; they are combined for every candidate afterwards. Returns the chosen weight and the mean
    AUROC (%) of every candidate; ties go to the smaller weight.
    """
    detector = D2FADDetector(model, global_weight=0.0)
    aurocs: dict[float, list[float]] = {w: [] for w in weights}
    states = fit_sets(detector, sets, image_size)
    for s in sets:
        images = ImageDataset(s.task.items(s.split), image_size, s.task.modality, progress=False)
        loader = torch.utils.data.DataLoader(images, batch_size=batch_size, num_workers=0)
        local, image_level, labels = [], [], []
        for batch in loader:
            encoded = detector.encode(torch.as_tensor(batch["image"]))
            local.append(detector.detect(encoded, states[s.name], tuple(batch["image"].shape[-2:])).scores.cpu())
            image_level.append(detector.global_score(encoded, states[s.name]).cpu())
            labels.append(torch.as_tensor(batch["label"]))
        local, image_level, labels = torch.cat(local), torch.cat(image_level), torch.cat(labels)
        for w in weights:
            aurocs[w].append(100 * anomaly_metrics(local + w * image_level, labels)["auroc"])
    means = {w: statistics.mean(v) for w, v in aurocs.items()}
    best = max(weights, key=lambda w: (means[w], -w))
    return best, means
