"""Post-processing transforms: image anomaly scores from anomaly maps, and maps brought back onto the source image."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from monai.config import KeysCollection
from monai.transforms import Compose, MapTransform

from monai_d2fad.scoring import image_score
from monai_d2fad.transforms.presets import restore_map

__all__ = ["AnomalyScored", "RestoreMapd"]


class AnomalyScored(MapTransform):
    """Add ``score_key``: the image score (``mean`` or ``max``) of the anomaly map ``d[key]`` ``[1, H, W]``, as a
    one-element tensor (what MONAI's ``ClassificationSaver`` writes to CSV)."""

    def __init__(
        self,
        keys: KeysCollection = "pred",
        score_key: str = "score",
        reduction: str = "mean",
        allow_missing_keys: bool = False,
    ):
        super().__init__(keys, allow_missing_keys)
        self.score_key, self.reduction = score_key, reduction

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[self.score_key] = image_score(d[key][None], self.reduction)
        return d


class RestoreMapd(MapTransform):
    """Bring the anomaly map ``d[key]`` ``[1, S, S]`` back onto the source image's grid (``restore_map``), like
    MONAI Label's ``Restored``: ``d[image_key]`` is the output of ``preset`` made with ``keep_source=True``."""

    def __init__(
        self, keys: KeysCollection, preset: Compose, image_key: str = "image", allow_missing_keys: bool = False
    ):
        super().__init__(keys, allow_missing_keys)
        self.preset, self.image_key = preset, image_key

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = restore_map(self.preset, d[self.image_key], d[key])
        return d
