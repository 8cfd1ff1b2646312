"""The compared detectors on tiny cases whose answer is known."""

import pytest
import torch

from monai_d2fad.inference import FewShotDetector
from monai_d2fad.methods import D2FADMethod, ImageNearestNeighbour, PatchCore, RD4ADPerTask

SIZE = (64, 64)


@pytest.fixture
def images():
    torch.manual_seed(0)
    return torch.rand(3, 3, *SIZE)


def _scores(method, support, query):
    return method.score(method.encode(query), method.fit(support), SIZE)


@pytest.mark.parametrize("cls", [PatchCore, ImageNearestNeighbour])
def test_a_reference_itself_scores_zero_and_a_new_image_higher(cls, images):
    method = cls("resnet18", teacher_weights=None)
    scores, maps = _scores(method, images[:2], images[1:])  # images[1] is a reference, images[2] is not
    assert maps.shape == (2, 1, *SIZE)
    assert scores[1] > 0.01
    assert scores[0] < 0.02 * scores[1]  # zero up to the rounding of distance computations


def test_patchcore_marks_where_the_query_differs(images):
    method = PatchCore("resnet18", teacher_weights=None, sigma=0)
    query = images[:1].clone()
    query[..., 40:, 40:] = 1 - query[..., 40:, 40:]  # change one corner of a reference
    _, maps = _scores(method, images[:1], query)
    assert maps[0, 0, 48:, 48:].mean() > 5 * maps[0, 0, :16, :16].mean()


def test_rd4ad_fit_learns_the_references(images):
    method = RD4ADPerTask("resnet18", teacher_weights=None, steps=30, learning_rate=0.005)
    untrained = RD4ADPerTask("resnet18", teacher_weights=None, steps=0)
    untrained.teacher.load_state_dict(method.teacher.state_dict())
    before, _ = _scores(untrained, images[:2], images[:2])
    after, maps = _scores(method, images[:2], images[:2])
    assert maps.shape == (2, 1, *SIZE)
    assert after.mean() < 0.7 * before.mean()


def test_rd4ad_fit_is_reproducible(images):
    method = RD4ADPerTask("resnet18", teacher_weights=None, steps=3)
    first, _ = _scores(method, images[:2], images[2:])
    second, _ = _scores(method, images[:2], images[2:])
    assert torch.allclose(first, second)


def test_d2fad_method_matches_the_detector(tiny_model, images):
    model = tiny_model()
    method = D2FADMethod(model)
    scores, maps = _scores(method, images[:2], images[2:])
    expected_scores, expected_maps = FewShotDetector(model).set_support(images[:2]).score(images[2:])
    assert torch.allclose(scores, expected_scores, atol=1e-6)
    assert torch.allclose(maps, expected_maps, atol=1e-6)
    weights = method.support_weights(method.encode(images[2:]), method.fit(images[:2]))
    assert weights.shape == (1, 2)
    assert float(weights.sum()) == pytest.approx(1.0, abs=1e-5)
