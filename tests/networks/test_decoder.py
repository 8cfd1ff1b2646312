import pytest
import torch

from monai_d2fad.networks.decoder import decoder_for
from monai_d2fad.networks.teachers import build_teacher


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "efficientnet_lite0"])
def test_student_rebuilds_teacher_scales(name):
    teacher = build_teacher(name, weights=None)
    feats = teacher(torch.rand(2, 3, 64, 64))
    out = decoder_for(name, teacher.channels)(feats[-1])
    assert [o.shape for o in out] == [f.shape for f in feats[:3]]


def test_wide_resnet_student_has_official_size():
    channels = build_teacher("wide_resnet50_2", weights=None).channels
    student = decoder_for("wide_resnet50_2", channels)
    assert sum(p.numel() for p in student.parameters()) == pytest.approx(24.9e6, rel=0.01)
    out = student(torch.rand(1, 2048, 4, 4))
    assert [tuple(o.shape[1:]) for o in out] == [(256, 32, 32), (512, 16, 16), (1024, 8, 8)]


def test_linear_output_is_signed_like_lite_features_and_relu_output_is_not():
    channels = build_teacher("efficientnet_lite0", weights=None).channels
    x = torch.randn(2, channels[3], 2, 2)
    linear, relu = (
        decoder_for("efficientnet_lite0", channels)(x),
        decoder_for("efficientnet_lite0", channels, "relu")(x),
    )
    assert all((f < 0).any() for f in linear)
    assert all((f >= 0).all() for f in relu)
    assert decoder_for("resnet18", build_teacher("resnet18", weights=None).channels).layer1[-1].activate


def test_deep_levels_rebuild_strides_8_to_32_from_the_lite_head():
    teacher = build_teacher("efficientnet_lite0", weights=None)
    feats = teacher(torch.rand(2, 3, 64, 64))
    head = teacher.head(feats[-1])
    assert head.shape == (2, teacher.head_channels, 2, 2) and not head.requires_grad
    out = decoder_for("efficientnet_lite0", teacher.channels, levels="deep", head_channels=teacher.head_channels)(head)
    assert [o.shape for o in out] == [f.shape for f in feats[1:]]


def test_deep_levels_need_a_head():
    with pytest.raises(ValueError, match="resnet18 has none"):
        decoder_for("resnet18", build_teacher("resnet18", weights=None).channels, levels="deep")
    with pytest.raises(ValueError, match="no head"):
        build_teacher("resnet18", weights=None).head(torch.rand(1, 512, 2, 2))
