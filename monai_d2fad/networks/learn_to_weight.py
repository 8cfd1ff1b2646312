"""Learn-to-weight: how much each support image counts for a given query, per scale (paper Eq. 4, Appendix F).

Each module splits the computation into ``keys`` (support side, cacheable once per task) and ``logits`` (per
query), so that a detector encodes its supports once. Supports carry a batch axis that may be 1 (shared by all
queries) or equal to the query batch (training episodes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.utils import look_up_option
from torch import nn

__all__ = [
    "L2W_VARIANTS",
    "SIMILARITIES",
    "ConcatWeight",
    "DotProductWeight",
    "EmbeddedGaussianWeight",
    "EqualWeight",
    "GaussianWeight",
    "LearnToWeight",
    "build_l2w",
]


def _conv1x1_per_scale(channels: Sequence[int], out: Sequence[int] | None = None) -> nn.ModuleList:
    out = channels if out is None else out
    return nn.ModuleList(nn.Conv2d(c, o, 1) for c, o in zip(channels, out))


def _apply(conv: nn.Module, support: torch.Tensor) -> torch.Tensor:
    """Apply a 2D module to support features ``[B, K, C, H, W]``."""
    return conv(support.flatten(0, 1)).unflatten(0, support.shape[:2])


class LearnToWeight(nn.Module):
    """Base class: ``forward`` gives softmax weights ``[B, K]`` per scale.

    ``aggregate`` tells how the weights are used: ``"feature"`` compares the query with the weighted support
    feature (Eq. 5); ``"distance"`` averages the query's distances to each support (Eq. 2).
    """

    aggregate = "feature"

    def __init__(self, channels: Sequence[int]):
        super().__init__()
        self.channels = tuple(channels)

    def keys(self, scale: int, support: torch.Tensor) -> torch.Tensor:
        """Support-side part of the similarity for ``support`` ``[Bs, K, C, H, W]``."""
        raise NotImplementedError

    def logits(self, scale: int, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Similarity logits ``[B, K]`` of ``query`` ``[B, C, H, W]`` to the support keys."""
        raise NotImplementedError

    def weights(self, scale: int, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(scale, query, keys), dim=-1)

    def forward(self, query: Sequence[torch.Tensor], support: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [self.weights(i, q, self.keys(i, s)) for i, (q, s) in enumerate(zip(query, support))]


SIMILARITIES = ("dot", "cosine")


class _ScaledDotProduct(LearnToWeight):
    """softmax_k( sim(embed_q(z_qry), embed_s(z_spt_k)) ), features flattened over C x H x W.

    Args:
        similarity: ``"dot"``: the dot product over sqrt(C) (Eq. 4). Summed over C x H x W terms, its logits grow
            with the image size and are far apart from initialisation, so the softmax is one-hot and every query
            follows one arbitrary reference. ``"cosine"``: the cosine of the flattened features times a learned
            inverse temperature (initialised at ``init_scale``): references that look alike get alike weights.
        init_scale: initial inverse temperature of ``"cosine"``.
    """

    def __init__(self, channels: Sequence[int], similarity: str = "dot", init_scale: float = 10.0):
        super().__init__(channels)
        self.similarity = look_up_option(similarity, SIMILARITIES)
        if self.similarity == "cosine":
            self.log_scale = nn.Parameter(torch.full((len(channels),), math.log(init_scale)))

    def embed_query(self, scale: int, query: torch.Tensor) -> torch.Tensor:
        return query

    def embed_support(self, scale: int, support: torch.Tensor) -> torch.Tensor:
        return support

    def keys(self, scale: int, support: torch.Tensor) -> torch.Tensor:
        keys = self.embed_support(scale, support).flatten(2)
        return F.normalize(keys, dim=-1) if self.similarity == "cosine" else keys

    def logits(self, scale: int, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        q = self.embed_query(scale, query).flatten(1)
        if self.similarity == "cosine":
            return torch.matmul(keys, F.normalize(q, dim=-1).unsqueeze(-1)).squeeze(-1) * self.log_scale[scale].exp()
        return torch.matmul(keys, q.unsqueeze(-1)).squeeze(-1) / math.sqrt(self.channels[scale])


class DotProductWeight(_ScaledDotProduct):
    """The paper's learn-to-weight (Eq. 4): phi is a 1x1 convolution on the supports."""

    def __init__(self, channels: Sequence[int], similarity: str = "dot", init_scale: float = 10.0):
        super().__init__(channels, similarity, init_scale)
        self.phi = _conv1x1_per_scale(channels)

    def embed_support(self, scale: int, support: torch.Tensor) -> torch.Tensor:
        return _apply(self.phi[scale], support)


class GaussianWeight(_ScaledDotProduct):
    """Appendix F, Eq. 7: the non-local Gaussian, i.e. softmax of the raw dot product (no parameters).

    The same 1/sqrt(C) temperature as Eq. 4 is applied so that the variants differ only in similarity.
    """


class EmbeddedGaussianWeight(DotProductWeight):
    """Appendix F, Eq. 8: 1x1 projections theta (query) and phi (support) before the dot product."""

    def __init__(self, channels: Sequence[int], similarity: str = "dot", init_scale: float = 10.0):
        super().__init__(channels, similarity, init_scale)
        self.theta = _conv1x1_per_scale(channels)

    def embed_query(self, scale: int, query: torch.Tensor) -> torch.Tensor:
        return self.theta[scale](query)


class ConcatWeight(LearnToWeight):
    """Appendix F, Eq. 9: ReLU(w^T [theta(q), phi(s)]), with w shared over locations and averaged over them.

    Sharing w over locations keeps the parameter count independent of the image size; ``w`` is split into its
    query and support halves so the support half can be cached.
    """

    def __init__(self, channels: Sequence[int]):
        super().__init__(channels)
        self.theta = _conv1x1_per_scale(channels)
        self.phi = _conv1x1_per_scale(channels)
        self.w_query = _conv1x1_per_scale(channels, [1] * len(channels))
        self.w_support = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in channels)

    def keys(self, scale: int, support: torch.Tensor) -> torch.Tensor:
        return _apply(self.w_support[scale], _apply(self.phi[scale], support)).squeeze(2)  # [Bs, K, H, W]

    def logits(self, scale: int, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        q = self.w_query[scale](self.theta[scale](query))  # [B, 1, H, W]
        return torch.relu(q + keys).mean(dim=(-2, -1))


class EqualWeight(LearnToWeight):
    """No learn-to-weight (Eq. 2): every support counts 1/K and the query's distances to them are averaged."""

    aggregate = "distance"

    def keys(self, scale: int, support: torch.Tensor) -> torch.Tensor:
        return support.new_zeros(support.shape[:2])

    def logits(self, scale: int, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return keys.expand(query.shape[0], -1)


L2W_VARIANTS: dict[str, type[LearnToWeight]] = {
    "dot": DotProductWeight,
    "gaussian": GaussianWeight,
    "embedded_gaussian": EmbeddedGaussianWeight,
    "concat": ConcatWeight,
    "none": EqualWeight,
}


def build_l2w(name: str, channels: Sequence[int], similarity: str = "dot") -> LearnToWeight:
    """The learn-to-weight variant ``name`` for features of ``channels``; ``similarity`` applies to the variants
    that compare flattened features (``dot``, ``gaussian``, ``embedded_gaussian``)."""
    cls = look_up_option(name, L2W_VARIANTS)
    if issubclass(cls, _ScaledDotProduct):
        return cls(channels, similarity)
    return cls(channels)
