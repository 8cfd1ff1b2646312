"""Score one task's test images against many reference sets, with one network pass per query batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from monai_d2fad.data.images import ImageDataset, ReadImaged
from monai_d2fad.engines.evaluator import EvaluationSet
from monai_d2fad.methods.base import FewShotMethod
from monai_d2fad.metrics import anomaly_metrics

__all__ = ["SetScores", "score_sets", "read_images"]


def read_images(paths: Sequence[str], modality: str, image_size: int) -> torch.Tensor:
    """``[N, 3, S, S]`` images of one task, read with one reader (built once, not per file)."""
    read = ReadImaged(image_size, modality)
    return torch.stack([read({"image": p})["image"] for p in paths])


@dataclass
class SetScores:
    """Image scores of one reference set, with the maps and support weights of the images kept for figures."""

    scores: torch.Tensor
    labels: torch.Tensor
    map_range: tuple[float, float]
    example_maps: dict[int, torch.Tensor] = field(default_factory=dict)
    example_weights: dict[int, torch.Tensor] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        return anomaly_metrics(self.scores, self.labels)


def score_sets(
    method: FewShotMethod,
    images: ImageDataset,
    sets: Sequence[EvaluationSet],
    image_size: int,
    batch_size: int = 32,
    examples: Sequence[int] = (),
    progress: bool = True,
) -> dict[str, SetScores]:
    """Scores of every image of ``images`` against each set's references (all sets of the same task and split).

    ``examples`` are dataset indices whose maps (and learn-to-weight weights) are kept. ``map_range`` is the range
    of the maps over the whole dataset, between the 1st percentile of the per-image minima and the 99th of the
    per-image maxima: one colour scale per dataset, robust to a few outliers.
    """
    states = {s.name: method.fit(read_images(s.support, s.task.modality, image_size)) for s in sets}
    loader = torch.utils.data.DataLoader(images, batch_size=batch_size, shuffle=False, num_workers=0)
    scores = {name: [] for name in states}
    lows, highs = {name: [] for name in states}, {name: [] for name in states}
    kept_maps = {name: {} for name in states}
    kept_weights = {name: {} for name in states}
    labels, start = [], 0
    wanted = set(examples)
    for batch in tqdm(loader, desc=f"{type(method).__name__} on {len(states)} sets", disable=not progress):
        query = torch.as_tensor(batch["image"])
        encoded = method.encode(query)
        index = range(start, start + len(query))
        keep = [(i, j) for j, i in enumerate(index) if i in wanted]
        for name, state in states.items():
            s, m = method.score(encoded, state, tuple(query.shape[-2:]))
            scores[name].append(s.float().cpu())
            lows[name].append(m.flatten(1).amin(1).float().cpu())
            highs[name].append(m.flatten(1).amax(1).float().cpu())
            weights = method.support_weights(encoded, state) if keep else None
            for i, j in keep:
                kept_maps[name][i] = m[j].float().cpu()
                if weights is not None:
                    kept_weights[name][i] = weights[j].float().cpu()
        labels.append(torch.as_tensor(batch["label"]).long())
        start += len(query)
    labels = torch.cat(labels)
    return {
        name: SetScores(
            scores=torch.cat(scores[name]),
            labels=labels,
            map_range=(
                float(torch.quantile(torch.cat(lows[name]), 0.01)),
                float(torch.quantile(torch.cat(highs[name]), 0.99)),
            ),
            example_maps=kept_maps[name],
            example_weights=kept_weights[name],
        )
        for name in states
    }
