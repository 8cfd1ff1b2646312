"""The compared detectors on tiny cases whose answer is known."""

import pytest
import torch

from monai_d2fad.methods import D2FADDetector, Detection, Detector, ImageNearestNeighbour, PatchCore, RD4ADPerTask

SIZE = (64, 64)


@pytest.fixture
def images():
    torch.manual_seed(0)
    return torch.rand(3, 3, *SIZE)


def _scores(method, support, query):
    detection = method.detect(method.encode(query), method.fit(support), SIZE)
    return detection.scores, detection.maps


@pytest.mark.parametrize("cls", [PatchCore, ImageNearestNeighbour, RD4ADPerTask])
def test_every_baseline_is_a_detector_giving_one_typed_result(cls, images):
    method = cls(teacher="resnet18", teacher_weights=None, **({"steps": 1} if cls is RD4ADPerTask else {}))
    detection = method.detect_images(images[2:], method.fit(images[:2]))
    assert isinstance(method, Detector) and isinstance(detection, Detection)
    assert detection.scores.shape == (1,) and detection.maps.shape == (1, 1, *SIZE) and detection.weights is None


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
    method = RD4ADPerTask(teacher="resnet18", teacher_weights=None, steps=30, learning_rate=0.005)
    untrained = RD4ADPerTask(teacher="resnet18", teacher_weights=None, steps=0)
    untrained.teacher.load_state_dict(method.teacher.state_dict())
    before, _ = _scores(untrained, images[:2], images[:2])
    after, maps = _scores(method, images[:2], images[:2])
    assert maps.shape == (2, 1, *SIZE)
    assert after.mean() < 0.7 * before.mean()


def test_rd4ad_fit_is_reproducible(images):
    method = RD4ADPerTask(teacher="resnet18", teacher_weights=None, steps=3)
    first, _ = _scores(method, images[:2], images[2:])
    second, _ = _scores(method, images[:2], images[2:])
    assert torch.allclose(first, second)


def test_d2fad_detector_scores_kept_references_as_a_fitted_state(tiny_model, images):
    detector = D2FADDetector(tiny_model())
    detection = detector.detect(detector.encode(images[2:]), detector.fit(images[:2]), SIZE)
    expected_scores, expected_maps = detector.set_support(images[:2]).score(images[2:])
    assert torch.allclose(detection.scores, expected_scores, atol=1e-6)
    assert torch.allclose(detection.maps, expected_maps, atol=1e-6)
    assert detection.weights.shape == (1, 2)
    assert float(detection.weights.sum()) == pytest.approx(1.0, abs=1e-5)


def test_d2fad_detector_refuses_more_references_than_it_can_compare(tiny_model):
    from monai_d2fad.methods.d2fad import MAX_REFERENCES

    with pytest.raises(ValueError, match=f"{MAX_REFERENCES + 1} images.*at most {MAX_REFERENCES}"):
        D2FADDetector(tiny_model()).fit(torch.rand(MAX_REFERENCES + 1, 3, 8, 8))


@pytest.mark.parametrize("levels", ["shallow", "deep"])
def test_d2fad_detector_scores_at_the_image_size_whatever_the_levels(images, levels):
    from monai_d2fad.networks import D2FAD

    detector = D2FADDetector(D2FAD("efficientnet_lite0", teacher_weights=None, levels=levels).eval())
    references = detector.fit(images[:2])
    detection = detector.detect(detector.encode(images[2:]), references, SIZE)
    assert detection.maps.shape == (1, 1, *SIZE) and torch.isfinite(detection.scores).all()
    with pytest.raises(ValueError, match="differs from the support size"):
        detector.detect(detector.encode(torch.rand(1, 3, 96, 96)), references, (96, 96))


def test_d2fad_global_weight_adds_the_image_level_discrepancy(tiny_model, images):
    model = tiny_model()
    plain, extended = D2FADDetector(model), D2FADDetector(model, global_weight=2.0)
    encoded, references = plain.encode(images[:2]), plain.fit(images[:1])
    expected = plain.detect(encoded, references, SIZE).scores + 2.0 * plain.global_score(encoded, references)
    assert torch.allclose(extended.detect(encoded, references, SIZE).scores, expected, atol=1e-6)
    # the term lifts every location of the maps alike, so the maps alone (forward, exports) carry the extension
    lift = extended.maps(encoded, references, SIZE) - plain.maps(encoded, references, SIZE)
    assert torch.allclose(lift, 2.0 * plain.global_score(encoded, references).view(-1, 1, 1, 1).expand_as(lift))
    assert D2FADDetector(tiny_model(global_weight=2.0)).global_weight == 2.0  # the model's own weight by default
    image_level = plain.global_score(encoded, references)
    assert float(image_level[0]) == pytest.approx(0.0, abs=1e-5) and float(image_level[1]) > 1e-3  # [0] is the ref
    with pytest.raises(ValueError, match="no teacher features"):
        plain.global_score(encoded, type(references)(references.features, references.keys))


def test_fit_folder_fits_every_normal_image_of_the_folder(references):
    from monai_d2fad.data.images import read_images
    from monai_d2fad.data.support import support_paths

    method = PatchCore("resnet18", teacher_weights=None)
    bank = method.fit_folder(references, image_size=64)
    assert torch.equal(bank, method.fit(read_images(support_paths(references), None, 64)))
    assert bank.shape[0] == len(support_paths(references)) * 8 * 8  # every patch of every image, at stride 8
