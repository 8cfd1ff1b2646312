"""Score one task's test images against many reference sets, with one network pass per query batch."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from scipy.ndimage import gaussian_filter1d
from tqdm import tqdm

from monai_d2fad.data.evaluation import EvaluationSet
from monai_d2fad.data.images import ImageDataset
from monai_d2fad.methods.base import Detector, TaskDetector
from monai_d2fad.metrics import anomaly_metrics
from monai_d2fad.reference_sets import detect_sets, fit_sets

__all__ = ["EVALUATIONS", "SetScores", "label_sorted", "official_scores", "score_sets", "score_split"]


EVALUATIONS = ("honest", "official")
OFFICIAL_BATCH = 16  # the official test loader's batch size
OFFICIAL_SIGMA = 4.0


@dataclass
class SetScores:
    """Image scores of one reference set, with the maps and support weights of the images kept for figures.

    ``official`` holds the scores of the official code's evaluation (``official_scores``) and ``official_index``
    the dataset indices they belong to (the last incomplete batch is dropped, as its loader does).
    """

    scores: torch.Tensor
    labels: torch.Tensor
    map_range: tuple[float, float]
    example_maps: dict[int, torch.Tensor] = field(default_factory=dict)
    example_weights: dict[int, torch.Tensor] = field(default_factory=dict)
    official: torch.Tensor | None = None
    official_index: torch.Tensor | None = None

    def metrics(self, evaluation: str = "honest") -> dict[str, float]:
        if evaluation == "official":
            return anomaly_metrics(self.official, self.labels[self.official_index])
        return anomaly_metrics(self.scores, self.labels)


def official_scores(maps: torch.Tensor) -> torch.Tensor:
    """The official test code's image scores of one batch of (per-image blurred) maps ``[B, 1, H, W]``.

    It blurs the batch's ``[B, H, W]`` maps as one 3-D array (``gaussian_filter(maps, sigma=4)``) and takes each
    map's maximum. The Gaussian is separable, so this is a blur along the batch axis after the per-image one; the
    only difference left is the border mode inside each image (ours replicates, scipy's reflects).
    """
    mixed = gaussian_filter1d(maps.float().cpu().numpy(), OFFICIAL_SIGMA, axis=0, mode="reflect", truncate=4.0)
    return torch.from_numpy(mixed).flatten(1).amax(1)


def label_sorted(images: ImageDataset) -> list[int]:
    """Dataset indices with the normal images first, then the abnormal ones, each in dataset order: the order of the
    official test loader (label-sorted folders, not shuffled)."""
    return sorted(range(len(images)), key=lambda i: (int(images.items[i]["label"]), i))


def score_sets(
    method: Detector,
    images: ImageDataset,
    sets: Sequence[EvaluationSet],
    image_size: int,
    batch_size: int = 32,
    examples: Sequence[int] = (),
    progress: bool = True,
    official: bool = False,
) -> dict[str, SetScores]:
    """Scores of every image of ``images`` against each set's references (all sets of the same task and split).

    ``examples`` are dataset indices whose maps (and learn-to-weight weights) are kept. ``map_range`` is the range
    of the maps over the whole dataset, between the 1st percentile of the per-image minima and the 99th of the
    per-image maxima: one colour scale per dataset, robust to a few outliers. With ``official``, the queries go in
    label-sorted batches of 16 and each set also gets the official code's scores (``official_scores``), which depend
    on the neighbouring images: a diagnostic of how far that evaluation is from the honest one, never a result.
    """
    states = fit_sets(method, sets, image_size)
    order = label_sorted(images) if official else list(range(len(images)))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(images, order), batch_size=OFFICIAL_BATCH if official else batch_size, num_workers=0
    )
    scores = {name: torch.empty(len(images)) for name in states}
    lows, highs = {name: [] for name in states}, {name: [] for name in states}
    kept_maps = {name: {} for name in states}
    kept_weights = {name: {} for name in states}
    kept_official = {name: [] for name in states}
    labels, start = torch.empty(len(images), dtype=torch.long), 0
    wanted = set(examples)
    for batch in tqdm(loader, desc=f"{type(method).__name__} on {len(states)} sets", disable=not progress):
        query = torch.as_tensor(batch["image"])
        index = torch.tensor(order[start : start + len(query)])
        labels[index] = torch.as_tensor(batch["label"]).long()
        keep = [(int(i), j) for j, i in enumerate(index) if int(i) in wanted]
        full = official and len(query) == OFFICIAL_BATCH
        for name, detection in detect_sets(method, query, states).items():
            m = detection.maps
            scores[name][index] = detection.scores.float().cpu()
            lows[name].append(m.flatten(1).amin(1).float().cpu())
            highs[name].append(m.flatten(1).amax(1).float().cpu())
            if full:
                kept_official[name].append(official_scores(m))
            for i, j in keep:
                kept_maps[name][i] = m[j].float().cpu()
                if detection.weights is not None:
                    kept_weights[name][i] = detection.weights[j].float().cpu()
        start += len(query)
    official_index = torch.tensor(order[: len(order) // OFFICIAL_BATCH * OFFICIAL_BATCH]) if official else None
    return {
        name: SetScores(
            scores=scores[name],
            labels=labels,
            map_range=(
                float(torch.quantile(torch.cat(lows[name]), 0.01)),
                float(torch.quantile(torch.cat(highs[name]), 0.99)),
            ),
            example_maps=kept_maps[name],
            example_weights=kept_weights[name],
            official=torch.cat(kept_official[name]) if official else None,
            official_index=official_index,
        )
        for name in states
    }


def score_split(detector: TaskDetector, images: ImageDataset, batch: int = 16) -> tuple[dict[str, float], float]:
    """Metrics of a task detector on a labelled split (``images.items`` carry ``label``) and the queries it scored
    per second: the ablation scripts' scoring of trained models, which need no reference sets."""
    scores, start = [], time.perf_counter()
    for i in range(0, len(images), batch):
        scores.append(
            detector.score(torch.stack([images[j]["image"] for j in range(i, min(i + batch, len(images)))]))[0]
        )
    seconds = time.perf_counter() - start
    labels = torch.tensor([it["label"] for it in images.items])
    return anomaly_metrics(torch.cat(scores), labels), len(images) / seconds
