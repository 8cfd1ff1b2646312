"""The two-student network: shapes with CNN and ViT teachers, a frozen teacher, seeded fresh copies."""

import pytest
import torch

from monai_d2fad.networks import TwoStudents


@pytest.mark.parametrize(
    "teacher, patches, classes",
    [("efficientnet_lite0", [(24, 8, 8), (40, 4, 4), (112, 2, 2)], 4), ("vit_test", [(32, 4, 4)] * 2, 5)],
)
def test_outputs_pair_teacher_and_students(teacher, patches, classes):
    out = TwoStudents(teacher, teacher_weights=None)(torch.rand(2, 3, 32, 32))
    assert [tuple(p.shape[1:]) for p in out.teacher_patches] == patches
    assert [p.shape for p in out.decoder_patches] == [p.shape for p in out.teacher_patches]
    assert len(out.teacher_classes) == len(out.student_classes) == classes
    assert [c.shape for c in out.student_classes] == [c.shape for c in out.teacher_classes]


def test_teacher_is_frozen_and_students_train():
    model = TwoStudents("resnet18", teacher_weights=None).train()
    out = model(torch.rand(2, 3, 32, 32))
    (sum(p.sum() for p in out.decoder_patches) + sum(c.sum() for c in out.student_classes)).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(p.grad is not None for p in model.student.decoder.parameters())
    assert any(p.grad is not None for p in model.student.encoder.parameters())
    assert not model.teacher.training  # frozen teachers stay in eval mode


def test_fresh_copy_shares_the_teacher_and_is_seeded():
    model = TwoStudents("resnet18", teacher_weights=None)
    a, b = model.fresh_copy(3), model.fresh_copy(3)
    assert a.teacher is model.teacher
    assert all(torch.equal(x, y) for x, y in zip(a.student.state_dict().values(), b.student.state_dict().values()))
    c = model.fresh_copy(4)
    assert not all(torch.equal(x, y) for x, y in zip(a.student.state_dict().values(), c.student.state_dict().values()))


def test_unknown_teacher_is_refused():
    with pytest.raises(ValueError, match="resnet9"):
        TwoStudents("resnet9", teacher_weights=None)
