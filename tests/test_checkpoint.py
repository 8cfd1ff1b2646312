import pytest
import torch

from monai_d2fad.checkpoint import load_checkpoint, save_checkpoint
from monai_d2fad.inference import FewShotDetector
from monai_d2fad.networks import D2FAD


@pytest.fixture
def teacher_file(tmp_path):
    path = tmp_path / "teacher.pth"
    torch.save(D2FAD("resnet18", teacher_weights=None).teacher.net.state_dict(), path)
    return str(path)


def test_round_trip_gives_the_same_scores(tmp_path, teacher_file):
    model = D2FAD("resnet18", teacher_weights=teacher_file, l2w="concat", image_score="max").eval()
    path = save_checkpoint(model, tmp_path / "ckpt.pt", epoch=3)
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["epoch"] == 3 and sorted(ckpt) == ["d2fad", "epoch", "l2w", "student"]
    assert all(isinstance(v, torch.Tensor) for v in ckpt["student"].values())
    loaded = load_checkpoint(path)
    assert loaded.config == model.config
    support, query = torch.rand(2, 3, 64, 64), torch.rand(3, 3, 64, 64)
    a = FewShotDetector(model).set_support(support).score(query)[0]
    b = FewShotDetector(loaded).set_support(support).score(query)[0]
    assert torch.equal(a, b)


def test_checkpoint_is_small_without_teacher(tmp_path, teacher_file):
    model = D2FAD("resnet18", teacher_weights=teacher_file)
    path = save_checkpoint(model, tmp_path / "ckpt.pt")
    student_bytes = sum(p.numel() * 4 for p in model.student.parameters())
    assert (tmp_path / "ckpt.pt").stat().st_size < 1.2 * student_bytes + 2e6
    assert path.endswith("ckpt.pt")


def test_other_teacher_weights_are_refused(tmp_path, teacher_file):
    path = save_checkpoint(D2FAD("resnet18", teacher_weights=teacher_file), tmp_path / "ckpt.pt")
    other = tmp_path / "other.pth"
    torch.save(D2FAD("resnet18", teacher_weights=None).teacher.net.state_dict(), other)
    with pytest.raises(ValueError, match="other teacher weights"):
        load_checkpoint(path, teacher_weights=str(other))


def test_no_silent_overwrite(tmp_path, tiny_model):
    path = save_checkpoint(tiny_model(), tmp_path / "ckpt.pt")
    with pytest.raises(FileExistsError):
        save_checkpoint(tiny_model(), path)
    save_checkpoint(tiny_model(), path, overwrite=True)


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"bad.pt"):
        load_checkpoint(bad)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_from_before_the_student_output_setting_loads_as_it_was_trained(tmp_path):
    model = D2FAD(
        "efficientnet_lite0", teacher_weights=None, student_output="relu", l2w_similarity="dot", levels="shallow"
    )
    path = save_checkpoint(model, tmp_path / "old.pt")
    content = torch.load(path, weights_only=True)
    for key in ("student_output", "l2w_similarity", "levels", "global_weight"):  # as version 0.1.0 wrote it
        del content["d2fad"]["config"][key]
    torch.save(content, path)
    with pytest.warns(UserWarning, match="random teacher"):
        loaded = load_checkpoint(path)
    assert loaded.config["student_output"] == "relu" and loaded.config["l2w_similarity"] == "dot"
    assert loaded.config["levels"] == "shallow" and loaded.config["global_weight"] == 0.0


def test_card_records_the_training_image_size(tmp_path, tiny_model):
    """Apps read the size a model was trained at from its checkpoint instead of asking for it again."""
    from monai_d2fad.checkpoint import read_checkpoint, trained_image_size

    assert trained_image_size(read_checkpoint(save_checkpoint(tiny_model(), tmp_path / "old.pt"))) is None
    assert trained_image_size(read_checkpoint(save_checkpoint(tiny_model(), tmp_path / "new.pt", image_size=96))) == 96
