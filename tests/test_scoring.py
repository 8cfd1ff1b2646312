import pytest
import torch

from monai_d2fad.scoring import anomaly_map, cosine_distance, image_score, support_distance, weighted_support


def test_cosine_distance_per_location_and_flattened():
    a = torch.rand(2, 4, 3, 3)
    assert cosine_distance(a, a).shape == (2, 3, 3)
    assert torch.allclose(cosine_distance(a, 2 * a), torch.zeros(2, 3, 3), atol=1e-6)
    assert cosine_distance(a, -a, flatten=True).allclose(torch.full((2,), 2.0))


def test_weighted_support_with_shared_supports():
    support = torch.rand(1, 3, 4, 2, 2)
    weights = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    mixed = weighted_support(support, weights)
    assert torch.allclose(mixed[0], support[0, 0])
    assert torch.allclose(mixed[1], support[0, 1:].mean(0))


def test_distance_aggregation_averages_per_support_distances():
    query, support = torch.rand(2, 4, 3, 3), torch.rand(2, 3, 4, 3, 3)
    w = torch.full((2, 3), 1 / 3)
    expected = torch.stack([cosine_distance(query, support[:, k]) for k in range(3)]).mean(0)
    assert torch.allclose(support_distance(query, support, w, "distance"), expected, atol=1e-6)


def test_anomaly_map_size_combine_and_blur():
    d = [torch.rand(2, 8, 8), torch.rand(2, 4, 4)]
    summed = anomaly_map(d, (32, 32), "sum", sigma=0)
    assert summed.shape == (2, 1, 32, 32)
    prod = anomaly_map(d, (32, 32), "product", sigma=0)
    assert not torch.allclose(summed, prod)
    blurred = anomaly_map(d, (32, 32), "sum", sigma=4)
    assert blurred.std() < summed.std()
    # blurring keeps a constant map constant (no dark border from zero padding)
    flat = anomaly_map([torch.ones(1, 4, 4)], (32, 32), sigma=4)
    assert torch.allclose(flat, torch.ones_like(flat), atol=1e-5)


def test_blur_is_per_image():
    d = [torch.rand(3, 8, 8)]
    alone = anomaly_map([d[0][1:2]], (32, 32))
    assert torch.allclose(anomaly_map(d, (32, 32))[1:2], alone, atol=1e-6)


def test_image_score_mean_and_max():
    maps = torch.tensor([[[[0.0, 1.0], [1.0, 2.0]]]])
    assert float(image_score(maps, "mean")) == 1.0
    assert float(image_score(maps, "max")) == 2.0
    with pytest.raises(ValueError):
        image_score(maps, "median")
