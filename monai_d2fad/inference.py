"""Few-shot detector: encode the K normal references of a task once, then score queries with one pass each."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from monai_d2fad.checkpoint import ModelCard, load_checkpoint
from monai_d2fad.data.images import load_image
from monai_d2fad.data.support import read_support_list
from monai_d2fad.data.tasks import is_image_file, list_images
from monai_d2fad.networks.d2fad import D2FAD
from monai_d2fad.scoring import image_score

__all__ = ["AnomalyMapNetwork", "FewShotDetector", "support_paths"]


class FewShotDetector(torch.nn.Module):
    """Scores queries against a cached support set.

    The official evaluation re-encodes the K supports for every batch (K + 1 passes per query); supports are fixed
    per task, so here their student features and learn-to-weight keys are computed once in ``set_support`` and
    kept as buffers (they move with ``.to(device)``). ``forward`` returns the anomaly maps, for MONAI inferers.

    Args:
        model: a trained ``D2FAD``; it is put in eval mode.
        image_score: override the model's ``mean``/``max`` image score.
    """

    def __init__(self, model: D2FAD, image_score: str | None = None):
        super().__init__()
        self.model = model.eval()
        self.image_score = image_score or model.config["image_score"]
        self.num_scales = 0

    @property
    def device(self) -> torch.device:
        return next(self.model.student.parameters()).device

    def train(self, mode: bool = True) -> FewShotDetector:
        """A detector only scores: it stays in eval mode (MONAI's ``eval_mode`` restores ``train()`` after runs)."""
        return super().train(False)

    def _cached(self, kind: str) -> list[torch.Tensor]:
        return [getattr(self, f"support_{kind}_{i}") for i in range(self.num_scales)]

    def encode_support(self, support: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Student features ``[1, K, C, h, w]`` and learn-to-weight keys per scale of references ``[K, 3, H, W]``."""
        if support.dim() != 4 or support.shape[0] < 1:
            raise ValueError(f"support must be [K, 3, H, W] with K >= 1, got {tuple(support.shape)}")
        _, student = self.model.encode(support.to(self.device))
        return self.support_from_student(student)

    def support_from_student(self, student: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``encode_support`` from the references' student features ``[K, C, h, w]`` per scale."""
        features = [f.unsqueeze(0) for f in student]  # a batch axis of 1: shared by every query
        return features, [self.model.l2w.keys(i, f) for i, f in enumerate(features)]

    @torch.no_grad()  # not inference_mode: the cached buffers must be usable in graphs (tracing, autograd callers)
    def set_support(self, support: torch.Tensor) -> FewShotDetector:
        """Encode and cache the normal references ``[K, 3, H, W]`` (RGB in [0, 1])."""
        return self.set_support_cache(*self.encode_support(support))

    def set_support_cache(self, features: list[torch.Tensor], keys: list[torch.Tensor]) -> FewShotDetector:
        """Use already encoded references (``encode_support``'s output, e.g. from a task package)."""
        self.num_scales = len(features)
        for i, (f, k) in enumerate(zip(features, keys)):
            self.register_buffer(f"support_features_{i}", f.detach().clone().to(self.device), persistent=False)
            self.register_buffer(f"support_keys_{i}", k.detach().clone().to(self.device), persistent=False)
        return self

    def support_cache(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The cached support features and keys (see ``set_support_cache``)."""
        if self.num_scales == 0:
            raise RuntimeError("call set_support(normal_images) before scoring")
        return self._cached("features"), self._cached("keys")

    def anomaly_maps(self, query: torch.Tensor, features: list[torch.Tensor], keys: list[torch.Tensor]) -> torch.Tensor:
        """Anomaly maps ``[B, 1, H, W]`` of queries against encoded references (one teacher+student pass)."""
        size = tuple(query.shape[-2:])
        expected = tuple(s * 4 for s in features[0].shape[-2:])
        if size != expected:
            raise ValueError(f"query size {size} differs from the support size {expected}")
        _, student = self.model.encode(query.to(self.device))
        return self.maps_from_student(student, features, keys, size)

    def maps_from_student(
        self, student: list[torch.Tensor], features: list[torch.Tensor], keys: list[torch.Tensor], size: tuple[int, int]
    ) -> torch.Tensor:
        """Anomaly maps from the queries' student features: lets one query pass serve several reference sets."""
        l2w = self.model.l2w
        weights = [l2w.weights(i, q, k) for i, (q, k) in enumerate(zip(student, keys))]
        return self.model.anomaly_map(student, features, weights, size)

    def forward(self, query: torch.Tensor) -> torch.Tensor:
        """Anomaly maps ``[B, 1, H, W]`` of queries ``[B, 3, H, W]`` against the cached references."""
        return self.anomaly_maps(query, *self.support_cache())

    @torch.inference_mode()
    def score(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores ``[B]`` and anomaly maps ``[B, 1, H, W]`` of queries ``[B, 3, H, W]``."""
        maps = self(query)
        return image_score(maps, self.image_score), maps


class AnomalyMapNetwork(FewShotDetector):
    """A trained D²4FAD with one task's normal references baked in: ``forward(images) -> maps [B, 1, H, W]``.

    The plain-network form that MONAI's ``SupervisedEvaluator``, ``ckpt_export``, MONAI Deploy's bundle operator
    and MONAI Label call as ``network(images)``.

    Args:
        checkpoint: a ``monai_d2fad`` checkpoint file.
        support: a folder of normal reference images, one image, a support list file or a list of paths.
        modality, image_size: preprocessing of the references (as for the queries).
        teacher_weights: see ``checkpoint.load_checkpoint``.
    """

    def __init__(
        self,
        checkpoint: str,
        support: str | Sequence[str],
        modality: str | None = None,
        image_size: int = 128,
        teacher_weights: str | None = "config",
    ):
        super().__init__(load_checkpoint(checkpoint, teacher_weights=teacher_weights))
        self.model.requires_grad_(False)  # scoring only: no autograd graph when called as network(images)
        images = torch.stack([load_image(p, modality, image_size) for p in support_paths(support)])
        self.register_buffer("support_images", images, persistent=False)
        self.set_support(images)

    def load_state_dict(self, state_dict: dict, strict: bool = True, assign: bool = False):
        """Also accepts a ``monai_d2fad`` checkpoint (``d2fad``/``student``/``l2w``), as MONAI's ``ckpt_export``
        passes the checkpoint file to the network; the supports are re-encoded with the loaded weights."""
        if "d2fad" not in state_dict:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        ModelCard(self.model).load_state_dict(state_dict["d2fad"])
        self.model.student.load_state_dict(state_dict["student"])
        result = self.model.l2w.load_state_dict(state_dict["l2w"])
        self.set_support(self.support_images)
        return result


def support_paths(support: str | os.PathLike | Sequence[str]) -> list[str]:
    """Image paths from a folder, one image, a support list file (one path a line) or a sequence of paths."""
    if not isinstance(support, (str, os.PathLike)):
        return [os.fspath(p) for p in support]
    path = os.fspath(support)
    if os.path.isdir(path) or is_image_file(path):
        return [item["image"] for item in list_images(path)]
    return read_support_list(path)
