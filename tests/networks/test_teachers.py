import dataclasses
import json
import os

import numpy as np
import pytest
import torch

from monai_d2fad.networks import teachers
from monai_d2fad.networks.teachers import IMAGENET_FILES, TEACHERS, build_teacher
from tests.conftest import SHARED

SHAPES_FILE = os.path.join(SHARED, "acceptance", "torchvision_resnet_state_dict_shapes.json")
STRIDES = (4, 8, 16, 32)


@pytest.mark.parametrize("name", sorted(TEACHERS))
def test_four_scales_at_strides_4_to_32(name):
    teacher = build_teacher(name, weights=None)
    feats = teacher(torch.rand(2, 3, 64, 64))
    assert [f.shape[1] for f in feats] == list(teacher.channels)
    assert [f.shape[-1] for f in feats] == [64 // s for s in STRIDES]


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_lite0"])
def test_teacher_stays_frozen_in_train_mode(name):
    teacher = build_teacher(name, weights=None)
    parent = torch.nn.Sequential(teacher)
    parent.train()
    assert not teacher.training
    assert all(not m.training for m in teacher.modules())
    assert all(not p.requires_grad for p in teacher.parameters())
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    assert not teacher(x)[0].requires_grad


@pytest.mark.parametrize("name", sorted(IMAGENET_FILES))
def test_resnet_state_dict_matches_torchvision(name):
    if not os.path.isfile(SHAPES_FILE):
        pytest.skip(f"torchvision shape list not found at {SHAPES_FILE}")
    expected = json.load(open(SHAPES_FILE))[name]
    got = {k: list(v.shape) for k, v in build_teacher(name, weights=None).net.state_dict().items()}
    assert got == {k: list(v) for k, v in expected.items()}


def test_torchvision_file_loads_unchanged(tmp_path):
    reference = build_teacher("resnet18", weights=None).net.state_dict()
    state = {k: torch.randn_like(v.float()).to(v.dtype) if v.dim() else v for k, v in reference.items()}
    path = tmp_path / "resnet18_weights.pth"  # no hash in the name: nothing to check it against
    torch.save(state, path)
    teacher = build_teacher("resnet18", weights=str(path))
    assert torch.equal(teacher.net.layer3[1].bn2.running_mean, state["layer3.1.bn2.running_mean"])


def test_weights_that_do_not_match_the_hash_in_their_name_are_refused(tmp_path):
    path = tmp_path / "resnet18-f37072fd.pth"  # torchvision's name, other content
    torch.save(build_teacher("resnet18", weights=None).net.state_dict(), path)
    with pytest.raises(ValueError, match=r"resnet18-f37072fd.pth has sha256 [0-9a-f]{64}, expected f37072fd"):
        build_teacher("resnet18", weights=str(path))


def test_a_wrong_file_in_torch_hub_cache_is_refused(monkeypatch, tmp_path):
    """torch.hub checks a hash only when it downloads: the file the README says to put there is checked here."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    cached = tmp_path / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir()
    torch.save(build_teacher("resnet18", weights=None).net.state_dict(), cached)
    with pytest.raises(ValueError, match="expected f37072fd"):
        build_teacher("resnet18", weights="imagenet")
    cached.write_bytes(b"truncated")  # a corrupt download gets the same message, not a pickle error
    with pytest.raises(ValueError, match="corrupt"):
        build_teacher("resnet18", weights="imagenet")


@pytest.mark.parametrize("name, prefix", [("efficientnet_lite0", "57934424"), ("efficientnet_lite2", "9656183e")])
def test_lite_wheel_file_is_hash_checked(monkeypatch, name, prefix):
    spec = teachers.LITE_SPECS[name]
    monkeypatch.setitem(teachers.LITE_SPECS, name, dataclasses.replace(spec, sha256="0" * 64))
    with pytest.raises(ValueError, match=rf"{name.replace('_', '-')}-{prefix}.pth has sha256 {prefix}"):
        build_teacher(name, weights="imagenet")


def test_wrong_weights_file_names_the_file(tmp_path):
    path = tmp_path / "not_resnet.pth"
    torch.save({"foo": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match=r"not_resnet.pth"):
        build_teacher("resnet18", weights=str(path))


def test_offline_imagenet_download_says_where_to_put_the_file(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match=r"wide_resnet50_2-95faca4d.pth") as err:
        build_teacher("wide_resnet50_2", weights="imagenet")
    assert str(tmp_path) in str(err.value)


def test_unknown_teacher():
    with pytest.raises(ValueError, match=r"Unsupported option 'vgg16'.*wide_resnet50_2"):  # MONAI's look_up_option
        build_teacher("vgg16", weights=None)


def test_normalization_is_owned_by_the_teacher():
    x = torch.rand(1, 3, 32, 32)
    raw = build_teacher("resnet18", weights=None, normalize="none")
    assert torch.equal(raw.normalize(x), x)
    lite = build_teacher("efficientnet_lite0", weights=None)
    assert torch.allclose(lite.normalize(torch.ones(1, 3, 1, 1)), torch.full((1, 3, 1, 1), 1.0))


@pytest.mark.parametrize(
    "name, size, probs",
    [("efficientnet_lite0", 224, (0.79, 0.91)), ("efficientnet_lite1", 240, (0.78, 0.69)),
     ("efficientnet_lite2", 260, (0.74, 0.86))],
)  # fmt: skip
def test_efficientnet_lite_imagenet_predictions(name, size, probs):
    """The shipped Lite weights in MONAI's EfficientNet give the right top-1 at their resolution (Lite0's
    probabilities are the reference implementation's)."""
    skdata = pytest.importorskip("skimage.data")
    from skimage.transform import resize

    teacher = build_teacher(name, weights="imagenet")
    for image, cls, prob in zip([skdata.chelsea(), skdata.coffee()], (285, 967), probs):
        x = torch.from_numpy(resize(image, (size, size), anti_aliasing=True).astype(np.float32)).permute(2, 0, 1)
        p = teacher.classify(x[None]).softmax(-1)[0]
        assert int(p.argmax()) == cls
        assert float(p[cls]) == pytest.approx(prob, abs=0.02)
