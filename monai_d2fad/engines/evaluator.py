"""Few-shot evaluation on MONAI's ``Evaluator``: per evaluation set, encode its K supports once, score its queries."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from contextlib import nullcontext

import torch
from ignite.engine import Events
from monai.engines import Evaluator

from monai_d2fad.data.evaluation import EvaluationSet
from monai_d2fad.data.images import load_image
from monai_d2fad.inference import FewShotDetector
from monai_d2fad.metrics import METRIC_NAMES, FewShotMetric

__all__ = ["FewShotEvaluator"]

logger = logging.getLogger(__name__)


class FewShotEvaluator(Evaluator):
    """Scores every evaluation set against its own supports; image AUROC (key metric), AUPR, F1-max.

    At each run start the supports of every set are encoded once with the current network (``FewShotDetector``);
    no test image is dropped. Metrics are the means over sets; ``results`` holds every metric per set and,
    if ``results_file`` is given, is written there as JSON after each run.

    Args:
        val_data_loader: a loader over an ``EvaluationDataset`` of ``sets``.
        network: the ``D2FAD`` model (or a ``DistributedDataParallel`` around it).
        sets: the ``EvaluationSet`` list of the dataset.
        image_size: side the supports are resized to (as the dataset's images).
        metric_prefix: prefix of the metric names (``val_`` gives ``val_auroc`` ...).
        image_score: override the model's ``mean``/``max`` image score.
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
        amp: bool = False,
        val_handlers: Sequence | None = None,
        **kwargs,
    ):
        metrics = {f"{metric_prefix}{name}": FewShotMetric(name) for name in METRIC_NAMES}
        key = f"{metric_prefix}auroc"
        self.key_metric = metrics.pop(key)
        super().__init__(
            device=device,
            val_data_loader=val_data_loader,
            key_val_metric={key: self.key_metric},
            additional_metrics=metrics,
            val_handlers=val_handlers,
            amp=amp,
            decollate=False,
            **kwargs,
        )
        self.network = network
        self.sets = list(sets)
        self.image_size, self.image_score, self.results_file = image_size, image_score, results_file
        self.metric_prefix = metric_prefix
        self.detectors: dict[str, FewShotDetector] = {}
        self.results: dict = {}
        self.add_event_handler(Events.STARTED, self._encode_supports)
        self.add_event_handler(Events.COMPLETED, self._report)

    @property
    def model(self) -> torch.nn.Module:
        return getattr(self.network, "module", self.network)

    def _encode_supports(self, engine: FewShotEvaluator) -> None:
        self.detectors = {}
        for s in self.sets:
            images = torch.stack([load_image(p, s.task.modality, self.image_size) for p in s.support])
            self.detectors[s.name] = FewShotDetector(self.model, self.image_score).set_support(images)

    def _iteration(self, engine: FewShotEvaluator, batchdata: dict) -> dict:
        images = batchdata["image"].to(engine.state.device, non_blocking=engine.non_blocking)
        names = list(batchdata["set"])
        scores = torch.empty(len(names))
        maps = torch.empty(len(names), 1, *images.shape[-2:])
        autocast = torch.autocast("cuda", **engine.amp_kwargs) if engine.amp else nullcontext()
        with autocast:
            for name in dict.fromkeys(names):
                idx = torch.tensor([i for i, n in enumerate(names) if n == name])
                s, m = self.detectors[name].score(images[idx])
                scores[idx], maps[idx] = s.float().cpu(), m.float().cpu()
        engine.state.output = {
            "score": scores,
            "map": maps,
            "label": batchdata["label"],
            "set": names,
            "image": images.cpu(),
            "path": list(batchdata["path"]),
        }
        return engine.state.output

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
