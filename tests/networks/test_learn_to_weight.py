import pytest
import torch

from monai_d2fad.networks.learn_to_weight import L2W_VARIANTS, build_l2w

CHANNELS = (8, 16, 32)


def _features(b, k=None):
    shape = (b,) if k is None else (b, k)
    return [torch.rand(*shape, c, 32 // 2**i, 32 // 2**i) for i, c in enumerate(CHANNELS)]


@pytest.mark.parametrize("name", sorted(L2W_VARIANTS))
def test_weights_sum_to_one_over_supports(name):
    l2w = build_l2w(name, CHANNELS)
    weights = l2w(_features(3), _features(3, 5))
    assert len(weights) == 3
    for w in weights:
        assert w.shape == (3, 5)
        assert torch.allclose(w.sum(-1), torch.ones(3))
        assert (w >= 0).all()


@pytest.mark.parametrize("name", sorted(L2W_VARIANTS))
def test_support_keys_shared_by_all_queries(name):
    """Keys of one support set ([1, K, ...]) give each query the weights of its own episode."""
    l2w = build_l2w(name, CHANNELS)
    query, support = _features(4), _features(1, 3)
    shared = l2w(query, support)
    per_query = l2w(query, [s.expand(4, -1, -1, -1, -1) for s in support])
    # float32 sums over C*H*W terms run in another order when the supports are broadcast, hence 1e-4
    for a, b in zip(shared, per_query):
        assert torch.allclose(a, b, atol=1e-4)


def test_weights_follow_the_support_order():
    l2w = build_l2w("dot", CHANNELS)
    query, support = _features(2), _features(2, 4)
    perm = torch.tensor([3, 1, 0, 2])
    w = l2w(query, support)[0]
    w_perm = l2w(query, [s[:, perm] for s in support])[0]
    assert torch.allclose(w[:, perm], w_perm, atol=1e-6)


def test_dot_l2w_parameter_count_for_wide_resnet():
    l2w = build_l2w("dot", (256, 512, 1024))
    assert sum(p.numel() for p in l2w.parameters()) == pytest.approx(1.38e6, rel=0.01)


def test_equal_weights_are_uniform():
    w = build_l2w("none", CHANNELS)(_features(2), _features(2, 4))[0]
    assert torch.allclose(w, torch.full((2, 4), 0.25))


def test_unknown_variant():
    with pytest.raises(ValueError, match="Available options"):
        build_l2w("attention", CHANNELS)


def test_cosine_similarity_spreads_weights_over_alike_references():
    """Eq. 4's dot product over C x H x W is one-hot from initialisation; the cosine keeps alike references alike."""
    channels = (24, 40, 112)
    base = [torch.randn(1, 1, c, 32 // 2**i, 32 // 2**i) for i, c in enumerate(channels)]
    support = [b.expand(1, 4, -1, -1, -1) + 0.3 * torch.randn(1, 4, *b.shape[2:]) for b in base]
    query = [b[:, 0] + 0.3 * torch.randn_like(b[:, 0]) for b in base]
    with torch.no_grad():
        dot = build_l2w("dot", channels)(query, support)
        cosine = build_l2w("dot", channels, similarity="cosine")(query, support)
    assert max(float(w.max()) for w in dot) > 0.6  # one reference takes most of the weight
    assert all(float(w.max()) < 0.3 for w in cosine)  # 0.25 is uniform over the 4 references
