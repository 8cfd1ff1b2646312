"""PDD as a detector and its training: losses that fall, a diversity term that decorrelates the students, a defect
scored above normals, the map that gives the score, the checkpoint's round trip."""

import pytest
import torch

from monai_d2fad.losses import PDDLoss, pdd_student_maps
from monai_d2fad.methods import PDDDetector, PDDTraining, image_items, train_pdd
from monai_d2fad.networks import PDD
from monai_d2fad.scoring import image_score, map_correlation
from tests.methods.test_two_students import _textures

DIMS = (8, 16, 32)


def _tiny(**options) -> PDD:
    return PDD("resnet18", None, global_teacher="efficientnet_lite0", global_teacher_weights=None, dims=DIMS, **options)


def test_training_makes_the_distillation_and_mmu_terms_fall():
    torch.manual_seed(0)
    network = _tiny()
    training = PDDTraining(batch_size=4)
    data = image_items(_textures(4))
    first = train_pdd(network, data, training=training, epoch_length=1).state.output
    last = train_pdd(network, data, training=training, epoch_length=60).state.output
    for term in ("student1", "student2", "mmu"):
        assert last[term] < 0.7 * first[term], (term, first[term], last[term])
    assert float(last["loss"]) < float(first["loss"])


def test_the_loss_is_its_terms_weighted():
    out = _tiny()(torch.rand(2, 3, 32, 32))
    loss = PDDLoss(diversity_weight=0.5, mmu_weight=2.0)
    total = loss(out)
    t = loss.last_terms
    assert total.item() == pytest.approx((t["student1"] + t["student2"] + 2 * t["mmu"] + 0.5 * t["diversity"]).item())
    assert PDDLoss(students="student1")(out).item() == pytest.approx((t["student1"] + t["mmu"]).item(), rel=1e-5)
    maps1, maps2 = pdd_student_maps(out)
    expected = torch.stack([map_correlation(a, b).clamp_min(0).mean() for a, b in zip(maps1, maps2)]).mean()
    assert t["diversity"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_map_correlation_by_hand():
    a = torch.rand(2, 4, 4)
    assert torch.allclose(map_correlation(a, 3 * a + 1), torch.ones(2), atol=1e-4)
    assert torch.allclose(map_correlation(a, -a), -torch.ones(2), atol=1e-4)


def test_the_diversity_term_decorrelates_the_students_errors():
    """Trained alike but for the diversity weight (off, or the default 0.1), the students' discrepancy maps on the
    training images coincide less with the term on, and both students still learn their target: their terms fall
    from about 1 to below 0.1 (higher than without the term, 0.02 and 0.004 here: decorrelating costs some fit)."""
    data = image_items(_textures(4))
    outcome = {}
    for weight in (0.0, 0.1):
        torch.manual_seed(0)
        network = _tiny()
        torch.manual_seed(1)
        last = train_pdd(network, data, training=PDDTraining(diversity_weight=weight, batch_size=4), epoch_length=60)
        network.eval()
        with torch.no_grad():
            maps1, maps2 = pdd_student_maps(network(_textures(4)))
        coincide = torch.stack([map_correlation(a, b).clamp_min(0).mean() for a, b in zip(maps1, maps2)]).mean()
        outcome[weight] = (float(coincide), last.state.output["student1"], last.state.output["student2"])
    assert outcome[0.1][0] < 0.5 * outcome[0.0][0], outcome
    assert outcome[0.1][1] < 0.1 and outcome[0.1][2] < 0.1, outcome


@pytest.mark.parametrize("students", ["both", "student1", "student2"])
def test_the_map_gives_the_score_apps_compute(students):
    detector = PDDDetector(_tiny(), students=students)
    with torch.inference_mode():
        detection = detector.detect_images(torch.rand(3, 3, 32, 32), detector.task_state)
    assert detection.maps.shape == (3, 1, 32, 32)
    assert torch.allclose(image_score(detection.maps, detector.image_score), detection.scores)


def test_both_students_is_their_mean():
    model, images = _tiny(), torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        maps = {s: PDDDetector(model, students=s, sigma=0).detect_images(images, model.student).maps for s in
                ("both", "student1", "student2")}  # fmt: skip
    assert torch.allclose(maps["both"], (maps["student1"] + maps["student2"]) / 2, atol=1e-6)


def test_few_shot_fit_scores_a_defect_higher_than_normals():
    """With the ImageNet Lite0 and Lite2 teachers (they install with the package), fresh students trained on 4 normal
    references score images with a square defect above every normal image."""
    model = PDD(dims=(32, 64, 128))
    detector = PDDDetector(model, train_on_references=True, steps=100, seed=0)
    references, queries = _textures(4, size=64, seed=1), _textures(4, size=64, seed=2)
    state = detector.fit(references)
    assert state is not model.student
    defect = queries.clone()
    defect[:, 0, 20:36, 20:36], defect[:, 1:, 20:36, 20:36] = 1.0, 0.0
    with torch.inference_mode():
        normal, abnormal = detector.detect_images(queries, state).scores, detector.detect_images(defect, state).scores
    assert abnormal.min() > normal.max(), (normal, abnormal)


def test_checkpoint_round_trip_register_and_export(tmp_path, references):
    from monai_d2fad.checkpoint import load_model, read_checkpoint, save_checkpoint
    from monai_d2fad.cli import main
    from monai_d2fad.task_package import load_task_package

    weights = tmp_path / "resnet18.pth"  # a teacher file (both teachers), so that the loaded model has the same ones
    torch.save(PDD("resnet18", None, global_teacher=None, dims=DIMS).teacher.teachers[0].net.state_dict(), weights)
    model = PDD("resnet18", str(weights), global_teacher="resnet18", global_teacher_weights=str(weights), dims=DIMS)
    path = save_checkpoint(model, tmp_path / "pdd.pt")
    assert "pdd" in torch.load(path, weights_only=True)
    loaded = load_model(path)
    queries = _textures(2, size=64)
    with torch.inference_mode():
        assert torch.equal(PDDDetector(model).score(queries)[0], PDDDetector(loaded).score(queries)[0])
    with pytest.raises(ValueError, match="pdd checkpoint"):
        read_checkpoint(path)  # a D²4FAD reader is told what the file holds
    package = str(tmp_path / "pdd.task.pt")
    main(["register", "--checkpoint", path, "--support", references, "--output", package, "--image_size", "64"])
    task = load_task_package(package)
    assert isinstance(task.detector, PDDDetector)
    result = main(["export", "--checkpoint", package, "--output", str(tmp_path / "pdd.ts"), "--format", "torchscript"])
    assert result["difference"] < 1e-4
