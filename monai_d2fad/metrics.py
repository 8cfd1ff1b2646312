"""Image-level anomaly-detection metrics (AUROC, AUPR, F1-max) and their Ignite metric, per evaluation set."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import torch
from ignite.metrics import Metric
from monai.metrics import compute_roc_auc
from monai.utils import look_up_option

__all__ = ["METRIC_NAMES", "FewShotMetric", "anomaly_metrics", "best_f1_threshold", "roc_curve"]

METRIC_NAMES = ("auroc", "aupr", "f1_max")


def _ranked(scores, labels) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scores and labels as tensors; at every distinct score (as threshold) the true positives and the number of
    images scoring at least that much."""
    scores = torch.as_tensor(scores, dtype=torch.float64).flatten()
    labels = torch.as_tensor(labels).flatten().long()
    positives = int(labels.sum())
    if positives == 0 or positives == len(labels):
        raise ValueError("metrics need both normal (0) and anomalous (1) images")
    order = torch.argsort(scores, descending=True)
    sorted_scores = scores[order]
    tp = torch.cumsum(labels[order].double(), 0)
    predicted = torch.arange(1, len(labels) + 1, dtype=torch.float64)
    # ties share one threshold: keep the last position of each run of equal scores
    last = torch.ones(len(labels), dtype=torch.bool)
    last[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    return scores, labels, sorted_scores[last], tp[last], predicted[last]


def _pr_curve(scores, labels) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scores and labels as tensors, and the thresholds, precision and recall of every distinct score."""
    scores, labels, thresholds, tp, predicted = _ranked(scores, labels)
    return scores, labels, thresholds, tp / predicted, tp / labels.sum()


def _f1(precision: torch.Tensor, recall: torch.Tensor) -> torch.Tensor:
    return 2 * precision * recall / (precision + recall).clamp_min(1e-12)


def anomaly_metrics(scores: torch.Tensor | Sequence[float], labels: torch.Tensor | Sequence[int]) -> dict[str, float]:
    """AUROC, average precision (AUPR) and the best F1 over all thresholds; label 1 is anomalous."""
    scores, labels, _, precision, recall = _pr_curve(scores, labels)
    recall_steps = torch.diff(recall, prepend=torch.zeros(1, dtype=torch.float64))
    return {
        "auroc": float(compute_roc_auc(scores, labels)),
        "aupr": float((precision * recall_steps).sum()),
        "f1_max": float(_f1(precision, recall).max()),
    }


def best_f1_threshold(
    scores: torch.Tensor | Sequence[float], labels: torch.Tensor | Sequence[int]
) -> tuple[float, float]:
    """The threshold (images scoring >= it are anomalous) with the best F1 on labelled data, and that F1."""
    _, _, thresholds, precision, recall = _pr_curve(scores, labels)
    f1 = _f1(precision, recall)
    best = int(torch.argmax(f1))
    return float(thresholds[best]), float(f1[best])


def roc_curve(
    scores: torch.Tensor | Sequence[float], labels: torch.Tensor | Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1), for plotting."""
    _, labels, _, tp, predicted = _ranked(scores, labels)
    positives = labels.sum()
    zero = torch.zeros(1, dtype=torch.float64)
    return torch.cat([zero, (predicted - tp) / (len(labels) - positives)]), torch.cat([zero, tp / positives])


class FewShotMetric(Metric):
    """Mean over evaluation sets of one of ``METRIC_NAMES``; ``results`` keeps every metric per set.

    The engine output must hold ``score`` [B], ``label`` [B] and ``set`` (B names of the evaluation sets). With
    ``gather`` (a sharded evaluation: each ``torch.distributed`` process scores part of the images), every process's
    scores are collected before computing, so that each computes the metric of all images.
    """

    required_output_keys = ("score", "label", "set")

    def __init__(
        self,
        name: str = "auroc",
        output_transform: Callable = lambda x: x,
        device: str | torch.device = "cpu",
        gather: bool = False,
    ):
        self.name = look_up_option(name, METRIC_NAMES)
        self.gather = gather
        self.results: dict[str, dict[str, float]] = {}
        super().__init__(output_transform=output_transform, device=device)

    def reset(self) -> None:
        self._scores: dict[str, list[float]] = defaultdict(list)
        self._labels: dict[str, list[int]] = defaultdict(list)

    def update(self, output: tuple) -> None:
        scores, labels, names = output
        for score, label, name in zip(torch.as_tensor(scores).tolist(), torch.as_tensor(labels).tolist(), names):
            self._scores[name].append(score)
            self._labels[name].append(int(label))

    def _gather(self) -> None:
        """Collect every process's scores (``gather``)."""
        if not (self.gather and torch.distributed.is_available() and torch.distributed.is_initialized()):
            return
        shards: list = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(shards, (dict(self._scores), dict(self._labels)))
        self.reset()
        for scores, labels in shards:
            for name in scores:
                self._scores[name] += scores[name]
                self._labels[name] += labels[name]

    def compute(self) -> float:
        self._gather()
        if not self._scores:
            raise RuntimeError("FewShotMetric has no scores: the evaluation data is empty")
        self.results = {name: anomaly_metrics(self._scores[name], self._labels[name]) for name in sorted(self._scores)}
        return sum(r[self.name] for r in self.results.values()) / len(self.results)
