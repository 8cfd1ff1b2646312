import pytest
import torch

from monai_d2fad.losses import DualDistillationLoss
from monai_d2fad.networks import D2FAD


def test_forward_returns_what_the_losses_need(tiny_model):
    model = tiny_model()
    out = model(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 3, 64, 64))
    assert [f.shape[1:] for f in out.teacher_query] == [f.shape[1:] for f in out.student_query]
    assert [tuple(f.shape[:2]) for f in out.student_support] == [(2, 3)] * 3
    assert [tuple(w.shape) for w in out.weights] == [(2, 3)] * 3
    assert out.aggregate == "feature"


@pytest.mark.parametrize("levels", ["shallow", "deep"])
def test_levels_from_images_and_from_cached_teacher_features_agree(levels):
    """Which teacher features are distilled: the same whether the teacher runs or its cached features are given
    (``deep`` computes the Lite head from the cached stride-32 feature)."""
    model = D2FAD("efficientnet_lite0", teacher_weights=None, levels=levels).eval()
    query, support = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 3, 64, 64)
    strides = {"shallow": [16, 8, 4], "deep": [8, 4, 2]}[levels]  # 64 px: strides 4-16 or 8-32
    with torch.no_grad():
        out = model(query, support)
        feats = model.teacher(torch.cat([query, support.flatten(0, 1)]))
        cached = model([f[:2] for f in feats], [f[2:].unflatten(0, (2, 3)) for f in feats])
    assert [f.shape[-1] for f in out.teacher_query] == strides == [f.shape[-1] for f in out.student_query]
    for a, b in zip(out.student_query + out.student_support, cached.student_query + cached.student_support):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_levels_default_to_the_papers_and_deep_needs_a_head():
    assert D2FAD("efficientnet_lite0", teacher_weights=None).config["levels"] == "shallow"
    assert D2FAD("efficientnet_lite0", teacher_weights=None, levels="deep").strides == (8, 16, 32)
    with pytest.raises(ValueError, match="head"):
        D2FAD("resnet18", teacher_weights=None, levels="deep")


def test_teacher_frozen_after_model_train():
    model = D2FAD("resnet18", teacher_weights=None).train()
    assert not model.teacher.training and model.student.training
    out = model(torch.rand(2, 3, 64, 64), torch.rand(2, 2, 3, 64, 64))
    DualDistillationLoss()(out).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert any(p.grad is not None for p in model.student.parameters())
    assert any(p.grad is not None for p in model.l2w.parameters())


@pytest.mark.parametrize("l2w", ["dot", "none"])
def test_a_few_optimiser_steps_lower_the_loss(l2w):
    model = D2FAD("resnet18", teacher_weights=None, l2w=l2w).train()
    query, support = torch.rand(2, 3, 64, 64), torch.rand(2, 2, 3, 64, 64)
    loss_fn = DualDistillationLoss()
    params = list(model.student.parameters()) + list(model.l2w.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    # batch norm in train mode depends on the batch; compare the same batch before and after in eval mode
    model.eval()
    with torch.no_grad():
        before = float(loss_fn(model(query, support)))
    model.train()
    for _ in range(5):  # one Adam step of lr 1e-3 can overshoot on the lam = 100 loss
        opt.zero_grad()
        loss_fn(model(query, support)).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        after = float(loss_fn(model(query, support)))
    assert after < before


@pytest.mark.parametrize(
    "bad, match",
    [((2, 1, 64, 64), "RGB"), ((2, 3, 60, 64), "multiples of 32")],
)
def test_bad_shapes_are_explained(tiny_model, bad, match):
    with pytest.raises(ValueError, match=match):
        tiny_model()(torch.rand(*bad), torch.rand(bad[0], 2, *bad[1:]))


def test_support_shape_must_match_query(tiny_model):
    with pytest.raises(ValueError, match="support must be"):
        tiny_model()(torch.rand(2, 3, 64, 64), torch.rand(3, 2, 3, 64, 64))


@pytest.mark.parametrize("option", [{"map_combine": "max"}, {"image_score": "median"}])
def test_unknown_scoring_options(option):
    with pytest.raises(ValueError, match="Available options"):
        D2FAD("resnet18", teacher_weights=None, **option)
