"""Teacher features of training images, computed once: the frozen teacher costs 3-4x the student's training step.

The teacher is frozen and episodes are not augmented, so each image's features are the same at every epoch. A
``TeacherFeatureCache`` encodes every image of an ``ImageDataset`` once (in memory, optionally also in a file under
``cache_dir`` so that a rerun or resumed run skips it) and ``EpisodeDataset`` hands these features to the student.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from monai_d2fad.data.images import ImageDataset
from monai_d2fad.outputs import atomic_write

if TYPE_CHECKING:
    from monai_d2fad.networks.teachers import Teacher

__all__ = ["TeacherFeatureCache"]

logger = logging.getLogger(__name__)


class TeacherFeatureCache:
    """Encodes images with a frozen teacher once; features are kept per scale as ``[N, C, h, w]`` tensors.

    Args:
        teacher: the model's frozen teacher (``D2FAD.teacher``); its weights' fingerprint is part of the key.
        cache_dir: optional folder for a file per encoded dataset, keyed by the images (path, slice, size on disk,
            modification time), their preprocessing, the image size and the teacher's fingerprint.
        batch_size: images per teacher pass.
        dtype: storage type of the features (``torch.float16`` halves the memory of wide teachers).
        device: where the teacher runs (it is moved there); default: where it is.
    """

    def __init__(
        self,
        teacher: Teacher,
        cache_dir: str | None = None,
        batch_size: int = 32,
        dtype: torch.dtype = torch.float32,
        progress: bool = True,
        device: str | torch.device | None = None,
    ):
        self.teacher = teacher if device is None else teacher.to(device)
        self.cache_dir, self.batch_size, self.dtype, self.progress = cache_dir, batch_size, dtype, progress

    def key(self, images: ImageDataset) -> str:
        """What the features depend on, hashed: the images, their preprocessing, their size and the teacher."""
        files = []
        for item in images.items:
            path = os.fspath(item["image"])
            stat = os.stat(path) if os.path.exists(path) else None
            files.append([path, item.get("slice"), item.get("modality"), stat and stat.st_size, stat and stat.st_mtime])
        settings = [images.image_size, images.modality, images.preset, self.teacher.fingerprint(), str(self.dtype)]
        text = json.dumps([files, settings], default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def encode(self, images: ImageDataset) -> list[torch.Tensor]:
        """Teacher features of every image of ``images`` (its order), per scale ``[N, C, h, w]`` on the CPU."""
        path = os.path.join(self.cache_dir, f"teacher_features_{self.key(images)}.pt") if self.cache_dir else None
        if path and os.path.isfile(path):
            logger.info("teacher features from %s", path)
            return torch.load(path, map_location="cpu", weights_only=True)
        device = next(self.teacher.parameters()).device
        chunks = []
        starts = range(0, len(images), self.batch_size)
        for start in tqdm(starts, desc="teacher features", disable=not self.progress):
            batch = torch.stack([images[i]["image"] for i in range(start, min(start + self.batch_size, len(images)))])
            chunks.append([f.to("cpu", self.dtype) for f in self.teacher(batch.to(device))])
        features = [torch.cat(scale) for scale in zip(*chunks)]
        if path:
            with atomic_write(path) as f:
                torch.save(features, f)
        return features
