"""DCAM as a detector: its losses fall, it scores anomalies higher, it round-trips and registers as a task."""

import os

import pytest
import torch

from monai_d2fad.checkpoint import load_dcam, read_checkpoint, save_checkpoint
from monai_d2fad.methods import DCAMDetector, DCAMTraining, train_dcam
from monai_d2fad.methods.dcam import image_items
from monai_d2fad.networks import DCAM


def _textures(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """Normal images: smooth stripes with a random phase, and a little noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.linspace(0, 8 * torch.pi, size)
    phase = torch.rand(n, 1, 1, generator=g) * 6.28
    stripes = 0.5 + 0.4 * torch.sin(x.view(1, 1, size) + phase).expand(n, size, size)
    return (stripes.unsqueeze(1).expand(n, 3, size, size) + 0.02 * torch.randn(n, 3, size, size, generator=g)).clamp(
        0, 1
    )


def _with_defect(images: torch.Tensor) -> torch.Tensor:
    out = images.clone()
    out[:, 0, 20:36, 20:36] = 1.0
    out[:, 1:, 20:36, 20:36] = 0.0
    return out


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A resnet18 DCAM (STFPM's teacher) whose random teacher is a weights file in torchvision's naming, so that
    reloading rebuilds the same teacher."""
    torch.manual_seed(0)
    teacher = tmp_path_factory.mktemp("teacher") / "resnet18.pth"
    torch.save(DCAM("resnet18", teacher_weights=None).teacher.net.state_dict(), teacher)
    return DCAM("resnet18", teacher_weights=str(teacher))


@pytest.mark.parametrize(("cd", "kd"), [("channel", "none"), ("none", "spatial"), ("spatial", "channel")])
def test_each_loss_falls_when_the_student_trains(model, cd, kd):
    network = model.fresh_copy(0)
    data = image_items(_textures(4, size=32))
    training = DCAMTraining(cd=cd, kd=kd, batch_size=4)
    first = train_dcam(network, data, training=training, epoch_length=1).state.output["loss"].item()
    last = train_dcam(network, data, training=training, epoch_length=30).state.output["loss"].item()
    assert last < 0.7 * first, (cd, kd, first, last)


def test_few_shot_fit_scores_a_defect_higher_than_normals():
    """With the ImageNet Lite0 teacher (it installs with the package): untrained, the student does not separate
    them (checked here with one step), trained on 4 normal references it does."""
    model = DCAM("efficientnet_lite0")
    untrained = DCAMDetector(model, train_on_references=True, steps=1, seed=0)
    references, queries = _textures(4, seed=1), _textures(4, seed=2)
    state = untrained.fit(references)  # training: outside inference mode
    with torch.inference_mode():
        normal = untrained.detect_images(queries, state).scores
        assert untrained.detect_images(_with_defect(queries), state).scores.min() < normal.max()
    detector = DCAMDetector(model, train_on_references=True, steps=60, seed=0)
    state = detector.fit(references)
    with torch.inference_mode():
        normal = detector.detect_images(queries, state)
        abnormal = detector.detect_images(_with_defect(queries), state)
    assert normal.maps.shape == (4, 1, 64, 64)
    assert abnormal.scores.min() > normal.scores.max()
    assert state is not model.student  # the model's own student is left as it was


def test_checkpoint_round_trip_with_weights_only(model, tmp_path):
    path = save_checkpoint(model, tmp_path / "dcam.pt")
    assert "dcam" in torch.load(path, weights_only=True)
    loaded = load_dcam(path)
    queries = _textures(2)
    with torch.inference_mode():
        assert torch.equal(DCAMDetector(model).score(queries)[1], DCAMDetector(loaded).score(queries)[1])
    with pytest.raises(ValueError, match="dcam checkpoint"):
        read_checkpoint(path)  # a D²4FAD reader is told what the file holds


def test_registered_dcam_task_predicts_like_its_model(model, tmp_path, references):
    from monai_d2fad.task_package import build_task_package, load_task_package, save_task_package

    trained = model.fresh_copy(0)
    train_dcam(trained, image_items(_textures(4)), training=DCAMTraining(batch_size=4), epoch_length=3)
    files = sorted(str(p) for p in __import__("pathlib").Path(references).glob("*.png"))
    task = build_task_package(trained, files, image_size=64)
    assert task.threshold["method"] == "loo"
    path = save_task_package(task, str(tmp_path / "dcam.task.pt"))
    again = load_task_package(path)
    assert isinstance(again.detector, DCAMDetector)
    queries = _textures(2)
    with torch.inference_mode():
        assert torch.allclose(again.detector(queries), task.detector(queries))
    judged = again.judge(queries, again.detector(queries))
    assert judged.scores.shape == (2,) and judged.overlays.shape == (2, 3, 64, 64)


def test_register_predict_and_export_a_dcam_checkpoint_from_the_command_line(model, tmp_path, references):
    import csv

    from monai_d2fad.cli import main

    checkpoint = save_checkpoint(model, tmp_path / "dcam.pt")
    package = str(tmp_path / "dcam.task.pt")
    main(["register", "--checkpoint", checkpoint, "--support", references, "--output", package, "--image_size", "64"])
    out = str(tmp_path / "predictions")
    main(["predict", "--checkpoint", package, "--input", references, "--output", out])
    with open(os.path.join(out, "predictions.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and all(r["anomalous"] in ("True", "False", "0", "1") for r in rows)
    exported = str(tmp_path / "dcam.ts")
    result = main(["export", "--checkpoint", package, "--output", exported, "--format", "torchscript"])
    assert result["difference"] < 1e-4
    with pytest.raises(SystemExit, match="D²4FAD"):
        main(
            [
                "export",
                "--checkpoint",
                package,
                "--output",
                str(tmp_path / "x.ts"),
                "--format",
                "torchscript",
                "--supports_as_input",
            ]
        )


def test_the_bundle_inference_network_refuses_a_dcam_checkpoint_by_name(model, tmp_path, references):
    from monai_d2fad.inference import AnomalyMapNetwork

    checkpoint = save_checkpoint(model, tmp_path / "dcam.pt")
    with pytest.raises(ValueError, match="DCAM"):
        AnomalyMapNetwork(checkpoint, references, image_size=64)


def test_fit_folder_trains_a_fresh_student_on_the_folder(model, references):
    detector = DCAMDetector(model, epochs=2)
    student = detector.fit_folder(references, image_size=32)
    before = next(model.student.parameters())
    assert student is not model.student and not torch.equal(next(student.parameters()), before)
    with torch.inference_mode():
        assert detector.detect_images(torch.rand(2, 3, 32, 32), student).scores.shape == (2,)
