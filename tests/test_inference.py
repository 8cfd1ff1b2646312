import pytest
import torch

from monai_d2fad.inference import FewShotDetector
from monai_d2fad.networks import L2W_VARIANTS


@pytest.mark.parametrize("l2w", sorted(L2W_VARIANTS))
def test_cached_equals_uncached(tiny_model, l2w):
    model = tiny_model(l2w)
    support, query = torch.rand(3, 3, 64, 64), torch.rand(4, 3, 64, 64)
    scores, maps = FewShotDetector(model).set_support(support).score(query)
    with torch.no_grad():
        ref_scores, ref_maps = model.score_output(model(query, support.expand(4, -1, -1, -1, -1)), (64, 64))
    assert scores.shape == (4,) and maps.shape == (4, 1, 64, 64)
    assert torch.allclose(scores, ref_scores, atol=1e-5)
    assert torch.allclose(maps, ref_maps, atol=1e-5)


def test_score_independent_of_batch_and_support_order(tiny_model):
    det = FewShotDetector(tiny_model())
    support, query = torch.rand(4, 3, 64, 64), torch.rand(5, 3, 64, 64)
    scores = det.set_support(support).score(query)[0]
    alone = torch.cat([det.score(query[i : i + 1])[0] for i in range(5)])
    assert torch.allclose(scores, alone, atol=1e-6)
    shuffled = det.set_support(support[torch.tensor([2, 0, 3, 1])]).score(query)[0]
    assert torch.allclose(scores, shuffled, atol=1e-6)
    assert scores.std() > 0


def test_image_score_override(tiny_model):
    model = tiny_model()
    support, query = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    mean_scores, maps = FewShotDetector(model).set_support(support).score(query)
    max_scores, _ = FewShotDetector(model, image_score="max").set_support(support).score(query)
    assert torch.allclose(max_scores, maps.flatten(1).amax(1))
    assert (max_scores > mean_scores).all()


def test_clear_errors(tiny_model):
    det = FewShotDetector(tiny_model())
    with pytest.raises(RuntimeError, match="set_support"):
        det.score(torch.rand(1, 3, 64, 64))
    det.set_support(torch.rand(2, 3, 64, 64))
    with pytest.raises(ValueError, match="differs from the support size"):
        det.score(torch.rand(1, 3, 96, 96))


def test_detector_stays_in_eval_mode(tiny_model):
    det = FewShotDetector(tiny_model()).set_support(torch.rand(2, 3, 64, 64))
    query = torch.rand(2, 3, 64, 64)
    before = det.score(query)[0]
    det.train()
    assert not det.model.student.training
    assert torch.equal(det.score(query)[0], before)


def test_anomaly_map_network_from_files(tmp_path):
    import os

    from PIL import Image

    from monai_d2fad.checkpoint import save_checkpoint
    from monai_d2fad.data.support import support_paths
    from monai_d2fad.inference import AnomalyMapNetwork
    from monai_d2fad.networks import D2FAD

    teacher = tmp_path / "teacher.pth"
    model = D2FAD("resnet18", teacher_weights=None)
    torch.save(model.teacher.net.state_dict(), teacher)
    model = D2FAD("resnet18", teacher_weights=str(teacher))
    ckpt = save_checkpoint(model, tmp_path / "model.pt")
    refs = tmp_path / "refs"
    refs.mkdir()
    for i in range(3):
        Image.fromarray((torch.rand(40, 40, 3) * 255).byte().numpy()).save(refs / f"{i}.png")
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(refs / f"{i}.png") for i in range(2)) + "\n")
    assert len(support_paths(str(refs))) == 3 and len(support_paths(str(listing))) == 2
    assert support_paths(str(refs / "0.png")) == [os.path.abspath(refs / "0.png")]
    net = AnomalyMapNetwork(ckpt, str(refs), image_size=64)
    x = torch.rand(2, 3, 64, 64)
    expected = FewShotDetector(model).set_support(net.task.load_images(net.task.support_files)).score(x)[1]
    assert torch.allclose(net(x), expected, atol=1e-5)
    net.load_state_dict(torch.load(ckpt, weights_only=True))  # the checkpoint layout loads, as ckpt_export does
    assert torch.allclose(net(x), expected, atol=1e-5)


def test_anomaly_map_network_opens_a_task_package_like_every_app(checkpoint_file, references, task_package_file):
    from monai_d2fad.inference import AnomalyMapNetwork
    from monai_d2fad.task_package import open_task

    package = task_package_file("--modality", "generic")
    from_package = AnomalyMapNetwork(package)
    from_checkpoint = AnomalyMapNetwork(checkpoint_file, references, image_size=64)
    x = torch.rand(2, 3, 64, 64)
    expected = open_task(package).detector(x)
    assert torch.allclose(from_package(x), expected, atol=1e-6)
    assert torch.allclose(from_checkpoint(x), expected, atol=1e-5)
    assert from_package.task.detector is from_package and from_package.task.image_size == 64
    assert from_checkpoint.task.threshold is None  # maps only: no calibration on construction
