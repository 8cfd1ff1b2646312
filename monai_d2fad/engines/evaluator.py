"""Few-shot evaluation on MONAI's ``Evaluator``: each set's K references encoded once, each image once for all sets."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from contextlib import nullcontext

import torch
from ignite.engine import Events
from monai.engines import Evaluator

from monai_d2fad.data.evaluation import EvaluationSet, set_group
from monai_d2fad.methods.base import Detector
from monai_d2fad.methods.d2fad import D2FADDetector
from monai_d2fad.metrics import METRIC_NAMES, FewShotMetric
from monai_d2fad.reference_sets import detect_sets, fit_sets

__all__ = ["FewShotEvaluator"]

logger = logging.getLogger(__name__)


class FewShotEvaluator(Evaluator):
    """Scores every evaluation set against its own supports; image AUROC (key metric), AUPR, F1-max.

    At each run start the references of every set are fitted once with a detector on the current network
    (``detector``, default ``D2FADDetector``);
    each image is then encoded once and scored against every set of its task and split (``reference_sets``, the
    protocol's loop). No test image is dropped. Metrics are the means over sets, and per task as
    ``<prefix><metric>/<task>`` (so ``StatsHandler`` prints them and ``TensorBoardStatsHandler`` plots them);
    ``results`` holds every metric per set and, if ``results_file`` is given, is written there as JSON after each
    run. The output holds one ``score``, ``label`` and ``set`` per (image, set) pair, and the ``image`` and its
    ``map`` against its group's first set (for image handlers).

    Args:
        val_data_loader: a loader over an ``EvaluationDataset`` of ``sets``; with a ``DistributedSampler`` (sharded
            evaluation) the metrics gather every process's scores.
        network: the trained model (or a ``DistributedDataParallel`` around it).
        sets: the ``EvaluationSet`` list of the dataset.
        image_size: side the supports are resized to (as the dataset's images).
        metric_prefix: prefix of the metric names (``val_`` gives ``val_auroc`` ...).
        key_val_metric: ``{name: FewShotMetric(...)}``, the metric that selects checkpoints (the bundle's
            ``validate#key_metric``); default ``{<prefix>auroc: FewShotMetric("auroc")}``. The other metrics of
            ``METRIC_NAMES`` are computed beside it.
        image_score: override the model's ``mean``/``max`` image score.
        detector: ``detector(model, image_score)`` gives the ``Detector`` of the model (``D2FADDetector``,
            ``DCAMDetector``).
        other arguments: as MONAI's ``Evaluator``.
    """

    def __init__(
        self,
        device: str | torch.device,
        val_data_loader,
        network: torch.nn.Module,
        sets: Sequence[EvaluationSet],
        image_size: int = 128,
        metric_prefix: str = "",
        image_score: str | None = None,
        results_file: str | None = None,
        key_val_metric: dict[str, FewShotMetric] | None = None,
        detector: Callable[[torch.nn.Module, str | None], Detector] = D2FADDetector,
        amp: bool = False,
        val_handlers: Sequence | None = None,
        **kwargs,
    ):
        key_val_metric = key_val_metric or {f"{metric_prefix}auroc": FewShotMetric("auroc")}
        (key, self.key_metric), *more = key_val_metric.items()
        if more or not isinstance(self.key_metric, FewShotMetric) or key != f"{metric_prefix}{self.key_metric.name}":
            expected = "{'<metric_prefix><name>': FewShotMetric(name)}"
            raise ValueError(f"key_val_metric must be {expected}, got {key_val_metric}")
        metrics = {
            f"{metric_prefix}{name}": FewShotMetric(name) for name in METRIC_NAMES if name != self.key_metric.name
        }
        sharded = isinstance(getattr(val_data_loader, "sampler", None), torch.utils.data.DistributedSampler)
        for metric in (self.key_metric, *metrics.values()):
            metric.gather = sharded  # each process scored its shard of the images: metrics need them all
        super().__init__(
            device=device,
            val_data_loader=val_data_loader,
            key_val_metric={key: self.key_metric},
            additional_metrics=metrics,
            val_handlers=[_PerTaskMetrics(self), *(val_handlers or [])],  # before the handlers that log them
            amp=amp,
            decollate=False,
            **kwargs,
        )
        self.network = network
        self.sets = list(sets)
        self.image_size, self.image_score, self.results_file = image_size, image_score, results_file
        self.metric_prefix = metric_prefix
        self.detector_class = detector
        self.detector: Detector | None = None  # built on the current network at each run start
        self.states: dict[str, object] = {}
        self.groups: dict[str, list[str]] = {}
        for s in self.sets:
            self.groups.setdefault(set_group(s), []).append(s.name)
        self.results: dict = {}
        self.add_event_handler(Events.STARTED, self._encode_supports)
        self.add_event_handler(Events.COMPLETED, self._report)

    @property
    def model(self) -> torch.nn.Module:
        return getattr(self.network, "module", self.network)

    def _encode_supports(self, engine: FewShotEvaluator) -> None:
        self.detector = self.detector_class(self.model, self.image_score)
        self.states = fit_sets(self.detector, self.sets, self.image_size)

    def _iteration(self, engine: FewShotEvaluator, batchdata: dict) -> dict:
        images = batchdata["image"].to(engine.state.device, non_blocking=engine.non_blocking)
        groups, labels = list(batchdata["group"]), torch.as_tensor(batchdata["label"])
        scores, pair_labels, names = [], [], []
        maps = torch.empty(len(groups), 1, *images.shape[-2:])
        autocast = torch.autocast("cuda", **engine.amp_kwargs) if engine.amp else nullcontext()
        for group in dict.fromkeys(groups):
            idx = torch.tensor([i for i, g in enumerate(groups) if g == group])
            states = {name: self.states[name] for name in self.groups[group]}
            with autocast:
                detections = detect_sets(self.detector, images[idx], states)
            for name, detection in detections.items():
                scores.append(detection.scores.float().cpu())
                pair_labels.append(labels[idx])
                names.extend([name] * len(idx))
            maps[idx] = next(iter(detections.values())).maps.float().cpu()
        engine.state.output = {
            "score": torch.cat(scores),
            "label": torch.cat(pair_labels),
            "set": names,
            "map": maps,
            "image": images.cpu(),
            "path": list(batchdata["path"]),
        }
        return engine.state.output

    def per_task_metrics(self) -> dict[str, float]:
        """``<prefix><metric>/<task>``: each metric's mean over the task's sets (after a run)."""
        by_task: dict[str, list[dict]] = {}
        for s in self.sets:
            if s.name in self.key_metric.results:
                by_task.setdefault(s.task.name, []).append(self.key_metric.results[s.name])
        return {
            f"{self.metric_prefix}{metric}/{task}": sum(r[metric] for r in results) / len(results)
            for task, results in by_task.items()
            for metric in METRIC_NAMES
        }

    def _report(self, engine: FewShotEvaluator) -> None:
        per_set = self.key_metric.results
        summary = {name: self.state.metrics[f"{self.metric_prefix}{name}"] for name in METRIC_NAMES}
        self.results = {"mean": summary, "per_set": per_set}
        for name, r in per_set.items():
            logger.info("%s: AUROC %.4f  AUPR %.4f  F1-max %.4f", name, r["auroc"], r["aupr"], r["f1_max"])
        logger.info("mean over %d sets: AUROC %.4f  AUPR %.4f  F1-max %.4f", len(per_set), *summary.values())
        if self.results_file:
            os.makedirs(os.path.dirname(os.path.abspath(self.results_file)), exist_ok=True)
            with open(self.results_file, "w", encoding="utf-8") as f:
                json.dump(self.results, f, indent=2)


class _PerTaskMetrics:
    """Adds the evaluator's per-task metrics to ``engine.state.metrics`` when an epoch's metrics are computed."""

    def __init__(self, evaluator: FewShotEvaluator):
        self.evaluator = evaluator

    def attach(self, engine: Evaluator) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Evaluator) -> None:
        engine.state.metrics.update(self.evaluator.per_task_metrics())
