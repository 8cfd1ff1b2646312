"""A trained D²4FAD as a detector: student features of the queries once, references encoded once per task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from monai_d2fad.methods.base import Detection, TaskDetector
from monai_d2fad.networks.d2fad import D2FAD
from monai_d2fad.scoring import global_discrepancy, image_score

__all__ = ["MAX_REFERENCES", "D2FADDetector", "D2FADFeatures", "D2FADReferences", "check_reference_count"]

MAX_REFERENCES = 64  # every query is compared with every reference at once: memory grows with K


def check_reference_count(count: int, source: str = "the normal references") -> None:
    """Refuse more references than ``MAX_REFERENCES`` (e.g. a whole training folder) before any is read or encoded;
    a thousand references at 256 px exhaust 24 GB of memory and the process dies without a message."""
    if count > MAX_REFERENCES:
        raise ValueError(
            f"{source}: {count} images; D²4FAD compares every query with each reference, so it takes at most "
            f"{MAX_REFERENCES} (the paper uses K = 2-8): give a folder or support list of a few normal images"
        )


class D2FADFeatures(NamedTuple):
    """Teacher (the distilled scales, ``D2FAD.strides``) and student features of images, ``[N, C, h, w]`` per scale."""

    teacher: list[torch.Tensor]
    student: list[torch.Tensor]


@dataclass
class D2FADReferences:
    """K encoded normal references, per scale: student features ``[1, K, C, h, w]`` (a batch axis of 1, shared by
    every query), learn-to-weight keys, and teacher features ``[K, C, h, w]`` (for the global extension; a task
    package keeps them only when its model uses the extension)."""

    features: list[torch.Tensor]
    keys: list[torch.Tensor]
    teacher: list[torch.Tensor] | None = None


class D2FADDetector(TaskDetector[D2FADFeatures, D2FADReferences]):
    """Scores queries against encoded references, with one teacher and student pass per query.

    The official evaluation re-encodes the K references for every batch (K + 1 passes per query); references are
    fixed per task, so ``fit`` encodes them once. ``set_support`` keeps them as buffers (they move with
    ``.to(device)``), for callers that score one task: ``forward`` returns its anomaly maps (for MONAI inferers),
    ``score`` its scores and maps.

    Args:
        model: a trained ``D2FAD``; it is put in eval mode.
        image_score: override the model's ``mean``/``max`` image score.
        global_weight: override the model's weight of this project's extension (``D2FAD``'s ``global_weight``; 0 is
            the paper's D²4FAD): ``global_weight`` times the image-level discrepancy of the teacher's features
            (``scoring.global_discrepancy``) is added to every location of the maps, and so to the image score.
    """

    def __init__(self, model: D2FAD, image_score: str | None = None, global_weight: float | None = None):
        super().__init__()
        self.model = model.eval()
        self.image_score = image_score or model.config["image_score"]
        self.global_weight = float(model.config["global_weight"] if global_weight is None else global_weight)
        self.num_scales, self.has_teacher = 0, False

    @property
    def device(self) -> torch.device:
        return next(self.model.student.parameters()).device

    def encode(self, images: torch.Tensor) -> D2FADFeatures:
        return D2FADFeatures(*self.model.encode(images.to(self.device)))

    @torch.no_grad()  # not inference_mode: cached references must be usable in graphs (tracing, autograd callers)
    def fit(self, support: torch.Tensor) -> D2FADReferences:
        """Encode normal references ``[K, 3, H, W]`` (RGB in [0, 1]), teacher and student in one pass."""
        if support.dim() != 4 or support.shape[0] < 1:
            raise ValueError(f"support must be [K, 3, H, W] with K >= 1, got {tuple(support.shape)}")
        check_reference_count(support.shape[0])
        return self.references_of(self.encode(support))

    def references_of(self, encoded: D2FADFeatures) -> D2FADReferences:
        """References from already encoded normal images (``encode``'s output for K images)."""
        features = [f.unsqueeze(0) for f in encoded.student]
        return D2FADReferences(features, [self.model.l2w.keys(i, f) for i, f in enumerate(features)], encoded.teacher)

    def weights(self, encoded: D2FADFeatures, references: D2FADReferences) -> list[torch.Tensor]:
        """Learn-to-weight weights ``[B, K]`` of the references for each query, per scale."""
        l2w = self.model.l2w
        return [l2w.weights(i, q, k) for i, (q, k) in enumerate(zip(encoded.student, references.keys))]

    def maps(self, encoded: D2FADFeatures, references: D2FADReferences, size: tuple[int, int]) -> torch.Tensor:
        """Anomaly maps ``[B, 1, H, W]`` (the paper's Eq. 5 discrepancy, upsampled, combined over scales, blurred;
        raised everywhere by the weighted image-level discrepancy with the global extension)."""
        return self._maps_and_weights(encoded, references, size)[0]

    def _maps_and_weights(
        self, encoded: D2FADFeatures, references: D2FADReferences, size: tuple[int, int]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        expected = tuple(s * self.model.strides[0] for s in references.features[0].shape[-2:])
        if tuple(size) != expected:
            raise ValueError(f"query size {tuple(size)} differs from the support size {expected}")
        weights = self.weights(encoded, references)
        maps = self.model.anomaly_map(encoded.student, references.features, weights, size)
        if self.global_weight:
            maps = maps + self.global_weight * self.global_score(encoded, references).view(-1, 1, 1, 1)
        return maps, weights

    def global_score(self, encoded: D2FADFeatures, references: D2FADReferences) -> torch.Tensor:
        """The image-level discrepancy ``[B]`` of the global extension (``scoring.global_discrepancy``)."""
        if references.teacher is None:
            raise ValueError("these references have no teacher features (a task package): the global score needs them")
        return global_discrepancy(encoded.teacher, references.teacher)

    def detect(self, encoded: D2FADFeatures, references: D2FADReferences, size: tuple[int, int]) -> Detection:
        maps, weights = self._maps_and_weights(encoded, references, size)
        return Detection(image_score(maps, self.image_score), maps, torch.stack(weights).mean(0))

    def set_support(self, support: torch.Tensor) -> D2FADDetector:
        """Encode and keep the normal references ``[K, 3, H, W]`` of the one task this detector scores."""
        return self.set_references(self.fit(support))

    def set_references(self, references: D2FADReferences) -> D2FADDetector:
        """Keep already encoded references (``fit``'s output, e.g. from a task package) as buffers."""
        self.num_scales = len(references.features)
        self.has_teacher = references.teacher is not None
        parts = {"features": references.features, "keys": references.keys, "teacher": references.teacher or []}
        for kind, tensors in parts.items():
            for i, t in enumerate(tensors):
                self.register_buffer(f"support_{kind}_{i}", t.detach().clone().to(self.device), persistent=False)
        return self

    @property
    def references(self) -> D2FADReferences:
        """The kept references (see ``set_support``)."""
        if self.num_scales == 0:
            raise RuntimeError("call set_support(normal_images) before scoring")
        kept = {k: [getattr(self, f"support_{k}_{i}") for i in range(self.num_scales)] for k in ("features", "keys")}
        teacher = [getattr(self, f"support_teacher_{i}") for i in range(self.num_scales)] if self.has_teacher else None
        return D2FADReferences(kept["features"], kept["keys"], teacher)

    @property
    def task_state(self) -> D2FADReferences:
        """What this detector scores its one task against: the kept references (a registered task's state)."""
        return self.references

    def forward(self, query: torch.Tensor) -> torch.Tensor:
        """Anomaly maps ``[B, 1, H, W]`` of queries ``[B, 3, H, W]`` against the kept references (the maps alone:
        no image scores or weights, for inferers and exported graphs)."""
        return self.maps(self.encode(query), self.references, tuple(query.shape[-2:]))
