"""DCAM's network: a mirrored student, attention in training only, a fresh student per reference set."""

import torch

from monai_d2fad.networks import DCAM


def _model(**kwargs):
    return DCAM("efficientnet_lite0", teacher_weights=None, **kwargs)


def test_teacher_and_student_share_the_architecture_and_three_scales():
    model = _model()
    out = model(torch.rand(2, 3, 64, 64))
    assert [t.shape for t in out.teacher] == [s.shape for s in out.student] == [a.shape for a in out.attended]
    assert [t.shape[1] for t in out.teacher] == [24, 40, 112]
    assert type(model.student.encoder) is type(model.teacher)
    assert not any(p.requires_grad for p in model.teacher.parameters())
    assert all(p.requires_grad for p in model.student.parameters())


def test_attention_runs_in_training_only():
    model = _model(attention="both")
    calls = []
    for block in model.student.attention:
        block.register_forward_hook(lambda *args: calls.append(1))
    model.train()
    out = model(torch.rand(2, 3, 64, 64))
    assert len(calls) == 3
    assert not torch.equal(out.attended[0], out.student[0])
    assert not model.teacher.training  # a frozen teacher stays in eval mode
    model.eval()
    out = model(torch.rand(2, 3, 64, 64))
    assert len(calls) == 3  # no attention at inference: the plain student, at STFPM's cost
    assert all(a is s for a, s in zip(out.attended, out.student))


def test_student_batch_norm_follows_train_mode():
    model = _model()
    model.train()
    assert model.student.encoder.training and not model.teacher.training


def test_fresh_copy_shares_the_teacher_and_is_seeded():
    model = _model()
    a, b, c = model.fresh_copy(1), model.fresh_copy(1), model.fresh_copy(2)
    assert a.teacher is model.teacher
    first = next(a.student.parameters())
    assert torch.equal(first, next(b.student.parameters()))
    assert not torch.equal(first, next(c.student.parameters()))
