"""PDD's network: shapes, frozen teachers, one or two teachers, the user-supplied teacher slot, the module choices."""

import pytest
import torch
from torch import nn

from monai_d2fad.networks import PDD, ExternalTeacher, build_external_teacher
from monai_d2fad.networks.pdd import InterLevelAdaption, ManifoldPriorAffine

DIMS = (8, 16, 32)


class TinyEncoder(nn.Module):
    """A stand-in for a user's encoder (VMamba's place): four maps at strides 4-32, channels last or first."""

    def __init__(self, channels_last: bool = True):
        super().__init__()
        self.channels_last = channels_last
        self.stem = nn.Conv2d(3, 6, 4, stride=4)
        self.downs = nn.ModuleList(nn.Conv2d(6 * 2**i, 6 * 2 ** (i + 1), 2, stride=2) for i in range(3))

    def forward(self, x):
        maps = [self.stem(x)]
        for down in self.downs:
            maps.append(down(maps[-1]))
        return [m.permute(0, 2, 3, 1) for m in maps] if self.channels_last else maps


def tiny_encoder() -> nn.Module:
    """The factory a user names as ``package.module:factory``."""
    return TinyEncoder(channels_last=False)


def test_outputs_have_the_manifold_shapes_for_both_students():
    out = PDD("resnet18", None, global_teacher="efficientnet_lite0", global_teacher_weights=None, dims=DIMS)(
        torch.rand(2, 3, 64, 64)
    )
    sizes = [(d, 64 // s, 64 // s) for d, s in zip(DIMS, (4, 8, 16))]
    for maps in (out.unified, out.student1, out.student2, *out.matched):
        assert [tuple(m.shape[1:]) for m in maps] == sizes
    assert [m.shape[1] for m in out.rebuilt[0]] == [64, 128, 256]  # ResNet-18's levels
    assert [m.shape[1] for m in out.rebuilt[1]] == [24, 40, 112]  # Lite0's
    assert all(not u.requires_grad for u in out.unified)  # the students' target is detached


def test_teachers_are_frozen_and_every_trainable_part_gets_gradients():
    model = PDD("resnet18", None, global_teacher="resnet18", global_teacher_weights=None, dims=DIMS).train()
    out = model(torch.rand(2, 3, 64, 64))
    loss = sum(s.sum() for s in out.student1 + out.student2) + sum(m.sum() for r in out.rebuilt for m in r)
    (loss + sum(m.sum() for r in out.matched for m in r)).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert not any(t.training for t in model.teacher.teachers)
    for part in (model.student.mmu, model.student.student1, model.student.student2):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters()), type(part).__name__


def test_one_teacher_is_the_ablation():
    model = PDD("resnet18", None, global_teacher=None, dims=DIMS)
    out = model(torch.rand(1, 3, 64, 64))
    assert len(model.teacher.teachers) == 1 and len(out.matched) == 1
    assert model.config["global_teacher"] is None


def test_residual_modules_start_as_the_identity():
    feats = [torch.rand(1, d, 32 // 2**i, 32 // 2**i) for i, d in enumerate(DIMS)]
    assert all(torch.equal(a, b) for a, b in zip(InterLevelAdaption(DIMS)(feats), feats))
    h = torch.rand(1, 8, 16, 16)
    assert torch.equal(ManifoldPriorAffine(32, 8)(h, torch.rand(1, 32, 4, 4)), h)


def test_fresh_copy_shares_both_teachers_and_is_seeded():
    model = PDD("resnet18", None, global_teacher="resnet18", global_teacher_weights=None, dims=DIMS)
    a, b = model.fresh_copy(1), model.fresh_copy(1)
    assert a.teacher is model.teacher
    assert all(torch.equal(x, y) for x, y in zip(a.student.state_dict().values(), b.student.state_dict().values()))


def test_a_user_encoder_fills_the_global_teacher_slot(tmp_path):
    weights = tmp_path / "encoder.pth"
    torch.save({"model": TinyEncoder().state_dict()}, weights)
    teacher = build_external_teacher(f"{__name__}:tiny_encoder", weights)
    assert isinstance(teacher, ExternalTeacher) and teacher.channels == (6, 12, 24, 48)
    assert all(not p.requires_grad for p in teacher.parameters())
    model = PDD("resnet18", None, global_teacher=f"{__name__}:tiny_encoder", global_teacher_weights=None, dims=DIMS)
    assert model.config["global_teacher"] == f"{__name__}:tiny_encoder"
    assert [m.shape[1] for m in model(torch.rand(1, 3, 64, 64)).rebuilt[1]] == [6, 12, 24]


def test_a_user_encoder_with_the_wrong_outputs_is_named():
    with pytest.raises(ValueError, match=r"TinyEncoder must return four \[B, C, H, W\] maps.*channels_last=True"):
        ExternalTeacher(TinyEncoder())  # its maps are channels-last
    with pytest.raises(ValueError, match="no_such_module"):
        build_external_teacher("no_such_module:factory")
    with pytest.raises(ValueError, match="global_teacher"):
        PDD(
            "resnet18",
            None,
            global_teacher=None,
            global_teacher_module=ExternalTeacher(TinyEncoder(), channels_last=True),
        )


def test_a_checkpoint_naming_a_user_encoder_is_rebuilt_only_when_trusted(tmp_path, monkeypatch):
    from monai_d2fad.checkpoint import load_model, save_checkpoint
    from monai_d2fad.networks.external_teacher import TRUSTED_TEACHERS_ENV

    factory = f"{__name__}:tiny_encoder"
    path = save_checkpoint(
        PDD("resnet18", None, global_teacher=factory, global_teacher_weights=None, dims=DIMS), tmp_path / "p.pt"
    )
    monkeypatch.delenv(TRUSTED_TEACHERS_ENV, raising=False)
    with pytest.raises(ValueError, match=rf"names the external teacher '{factory}'.*{TRUSTED_TEACHERS_ENV}"):
        load_model(path)
    monkeypatch.setenv(TRUSTED_TEACHERS_ENV, f"other:factory, {factory}")
    with pytest.warns(UserWarning, match="random teacher"):  # a random local teacher: expected in tests
        assert load_model(path).config["global_teacher"] == factory
