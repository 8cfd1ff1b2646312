"""Post-processing transforms for bundle inference: image anomaly scores from anomaly maps."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from monai.config import KeysCollection
from monai.transforms import MapTransform

from monai_d2fad.scoring import image_score

__all__ = ["AnomalyScored"]


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
