"""From student features to anomaly maps and image scores (paper section 2.4, METHOD.md "Scoring").

The same distance functions serve the losses (training) and the detector (inference), so that what is trained is
what is scored.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.layers.simplelayers import gaussian_1d, separable_filtering
from monai.utils import look_up_option

__all__ = [
    "anomaly_map",
    "class_token_distance",
    "cosine_distance",
    "global_discrepancy",
    "image_score",
    "map_correlation",
    "noisy_or",
    "support_distance",
    "weighted_support",
]

MAP_COMBINE = ("sum", "product")
AGGREGATES = ("feature", "distance")
IMAGE_SCORES = ("mean", "max")


def cosine_distance(a: torch.Tensor, b: torch.Tensor, flatten: bool = False) -> torch.Tensor:
    """``1 - cos`` over channels (dim -3) at each location, or over each whole flattened ``C x H x W`` map.

    Broadcasts: ``a [B, 1, C, H, W]`` against ``b [B, K, C, H, W]`` gives ``[B, K, H, W]`` (or ``[B, K]``).
    """
    if flatten:
        return 1 - F.cosine_similarity(a.flatten(-3), b.flatten(-3), dim=-1)
    return 1 - F.cosine_similarity(a, b, dim=-3)


def weighted_support(support: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_k w[b, k] * support[b, k]`` for support ``[Bs, K, C, H, W]`` (Bs = 1 or B) and weights ``[B, K]``."""
    mixed = torch.matmul(weights.unsqueeze(1).to(support.dtype), support.flatten(2))  # [B, 1, C*H*W]
    return mixed.view(weights.shape[0], *support.shape[2:])


def support_distance(
    query: torch.Tensor, support: torch.Tensor, weights: torch.Tensor, aggregate: str, flatten: bool = False
) -> torch.Tensor:
    """Discrepancy of ``query [B, C, H, W]`` to its supports, per location ``[B, H, W]`` (or ``[B]`` if flatten).

    ``aggregate="feature"``: distance to the weighted support feature (Eq. 5);
    ``aggregate="distance"``: weighted mean of the distances to each support (Eq. 2 with equal weights).
    """
    if look_up_option(aggregate, AGGREGATES) == "feature":
        return cosine_distance(query, weighted_support(support, weights), flatten)
    d = cosine_distance(query.unsqueeze(1), support, flatten)  # [B, K, ...]
    return (weights.view(*weights.shape, *([1] * (d.dim() - 2))) * d).sum(1)


def gaussian_blur(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur each ``[B, 1, H, W]`` map on its own (the official code's scipy call also blurs across the batch)."""
    kernel = gaussian_1d(torch.tensor(float(sigma)), truncated=4.0, approx="sampled", normalize=True).to(maps)
    return separable_filtering(maps, [kernel, kernel], mode="replicate")


def anomaly_map(
    distances: Sequence[torch.Tensor], size: Sequence[int], combine: str = "sum", sigma: float = 4.0
) -> torch.Tensor:
    """Upsample per-scale distance maps ``[B, h, w]`` to ``size``, combine them, blur: ``[B, 1, H, W]``."""
    combine = look_up_option(combine, MAP_COMBINE)
    up = [
        F.interpolate(d.unsqueeze(1).float(), size=tuple(size), mode="bilinear", align_corners=True) for d in distances
    ]
    out = up[0]
    for m in up[1:]:
        out = out + m if combine == "sum" else out * m
    return gaussian_blur(out, sigma) if sigma > 0 else out


def global_discrepancy(query: Sequence[torch.Tensor], support: Sequence[torch.Tensor]) -> torch.Tensor:
    """Image-level discrepancy ``[B]``: per scale, ``1 - cos`` between the query's globally pooled feature and the
    nearest reference's, summed over scales. Per scale, ``query`` is ``[B, C, h, w]`` and ``support`` ``[K, C, h, w]``.

    The anomaly map compares the query with its references location by location; this compares whole images, which
    catches anomalies that change an image's overall appearance more than any one place.
    """
    total = 0
    for q, s in zip(query, support):
        q = F.normalize(q.float().mean((-2, -1)), dim=-1)  # [B, C]
        s = F.normalize(s.float().mean((-2, -1)), dim=-1)  # [K, C]
        total = total + (1 - q @ s.T).amin(1)
    return total


def image_score(maps: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """One score per image: ``mean`` of the map (paper) or its ``max`` (official code)."""
    flat = maps.flatten(1)
    return flat.mean(1) if look_up_option(reduction, IMAGE_SCORES) == "mean" else flat.amax(1)


def class_token_distance(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """Per image ``[B]``: the mean squared error between layer-normalised class tokens ``[B, C]`` (as DINOv2's final
    token is normalised), ``2 (1 - r)`` for their correlation ``r``: in [0, 4] whatever the teacher's scale, so it
    sits beside the decoder's ``1 - cos`` in the Noisy-OR."""
    shape = (teacher.shape[-1],)
    return (F.layer_norm(teacher, shape) - F.layer_norm(student, shape)).pow(2).mean(-1)


def noisy_or(scores: Sequence[torch.Tensor]) -> torch.Tensor:
    """The Noisy-OR probability that an image is anomalous, ``prod_m (1 - exp(-s_m))``, from each model's
    non-negative discrepancy ``s_m`` ``[B]`` (``exp(-s_m)``: that model's probability that the image is normal).
    The image is called normal as soon as one model finds it normal."""
    out = torch.ones_like(scores[0])
    for s in scores:
        out = out * -torch.expm1(-s.clamp_min(0))
    return out


def map_correlation(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Pearson correlation over locations of two maps ``[B, H, W]``, per image ``[B]``: how much two students'
    discrepancy maps (their false alarms on normal images) coincide."""
    a, b = a.flatten(1), b.flatten(1)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).mean(1) / (a.std(1, unbiased=False) * b.std(1, unbiased=False) + eps)
