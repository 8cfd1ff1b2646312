"""Scoring queries against many reference sets: each set fitted once, each query batch encoded once for all sets.

The one scoring loop of the Ignite evaluator (``engines.FewShotEvaluator``), the benchmark protocol
(``protocol.evaluation.score_sets``) and the protocol's ``val`` choices (``protocol.selection``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from monai_d2fad.data.evaluation import EvaluationSet
from monai_d2fad.data.images import read_images
from monai_d2fad.methods.base import Detection, Detector

__all__ = ["detect_sets", "fit_sets"]


def fit_sets(detector: Detector, sets: Sequence[EvaluationSet], image_size: int) -> dict[str, Any]:
    """The fitted state of every set's references, by set name."""
    return {s.name: detector.fit(read_images(s.support, s.task.modality, image_size)) for s in sets}


@torch.inference_mode()
def detect_sets(detector: Detector, images: torch.Tensor, states: Mapping[str, Any]) -> dict[str, Detection]:
    """Detections of queries ``[B, 3, H, W]`` against every state of ``states``: one ``encode`` for all of them."""
    encoded = detector.encode(images)
    size = tuple(images.shape[-2:])
    return {name: detector.detect(encoded, state, size) for name, state in states.items()}
