import json
import os

import pytest
import torch

from monai_d2fad.checkpoint import load_checkpoint
from monai_d2fad.data import load_image
from monai_d2fad.data.support import support_paths
from monai_d2fad.inference import FewShotDetector
from monai_d2fad.task_package import is_task_package, load_task_package, main


def test_round_trip_scores_like_a_fresh_detector(checkpoint_file, references, task_package_file):
    out = task_package_file("--modality", "generic")
    assert is_task_package(out) and not is_task_package(checkpoint_file)
    package = load_task_package(out)
    assert package.image_size == 64 and len(package.support_files) == 3 and package.threshold["method"] == "loo"
    images = torch.stack([load_image(p, image_size=64) for p in support_paths(references)])
    fresh = FewShotDetector(load_checkpoint(checkpoint_file)).set_support(images)
    query = torch.rand(2, 3, 64, 64)
    assert torch.allclose(package.detector.score(query)[0], fresh.score(query)[0], atol=1e-6)
    assert load_checkpoint(out).config == fresh.model.config  # a package is also a checkpoint


def test_given_threshold_and_no_overwrite(checkpoint_file, references, task_package_file):
    target = task_package_file("--threshold", "0.25")
    assert load_task_package(target).threshold == {"method": "given", "value": 0.25}
    with pytest.raises(SystemExit, match="--overwrite"):
        main(["--checkpoint", checkpoint_file, "--support", references, "--output", target])


def test_a_whole_training_folder_as_references_is_refused_before_it_is_read(tmp_path, checkpoint_file):
    """A folder of more than ``MAX_REFERENCES`` normals (meant for training) ends with a message naming it, not
    with the process killed for memory after minutes of encoding."""
    import numpy as np
    from PIL import Image

    from monai_d2fad.methods.d2fad import MAX_REFERENCES

    folder = tmp_path / "train_good"
    folder.mkdir()
    for i in range(MAX_REFERENCES + 1):
        Image.fromarray(np.full((8, 8, 3), i, dtype=np.uint8)).save(folder / f"normal_{i}.png")
    args = ["--checkpoint", checkpoint_file, "--support", str(folder), "--output", str(tmp_path / "t.task.pt")]
    with pytest.raises(SystemExit, match=f"{folder}: {MAX_REFERENCES + 1} images.*at most {MAX_REFERENCES}"):
        main(args)
    assert not os.path.exists(tmp_path / "t.task.pt")


def test_not_a_package(checkpoint_file):
    with pytest.raises(ValueError, match="not a monai_d2fad task package"):
        load_task_package(checkpoint_file)


def test_a_package_with_a_nan_threshold_is_refused(tmp_path, task_package_file):
    path = task_package_file()
    content = torch.load(path, weights_only=True)
    content["package"]["threshold"] = json.dumps({"method": "loo", "value": float("nan")})
    torch.save(content, path)
    with pytest.raises(ValueError, match=r"the threshold of .*t.task.pt is nan, not a finite number"):
        load_task_package(path)


def test_judge_is_the_detectors_score_and_the_packages_threshold(task_package_file, references):
    package = load_task_package(task_package_file("--threshold", "0.5"))
    images = torch.stack(
        [load_image(os.path.join(references, f), image_size=64) for f in sorted(os.listdir(references))]
    )
    scores, maps = package.detector.score(images)
    judged = package.judge(images, maps)
    assert torch.allclose(judged.scores, scores) and torch.equal(judged.anomalous, scores >= 0.5)
    assert judged.overlays.shape == (3, 3, 64, 64) and package.judge(images, maps, overlays=False).overlays is None


def test_a_package_of_a_model_with_the_global_extension_keeps_its_teacher_references(tmp_path, references):
    from monai_d2fad.checkpoint import save_checkpoint
    from monai_d2fad.networks import D2FAD

    teacher = tmp_path / "teacher.pth"
    torch.save(D2FAD("resnet18", teacher_weights=None).teacher.net.state_dict(), teacher)
    model = D2FAD("resnet18", teacher_weights=str(teacher), global_weight=2.0)
    checkpoint = save_checkpoint(model, tmp_path / "global.pt")
    args = ["--checkpoint", checkpoint, "--support", references, "--image_size", "64"]
    package = load_task_package(main([*args, "--output", str(tmp_path / "g.task.pt")]))
    assert package.detector.global_weight == 2.0 and package.detector.references.teacher is not None
    images = torch.stack([load_image(p, image_size=64) for p in support_paths(references)])
    fresh = FewShotDetector(load_checkpoint(checkpoint)).set_support(images)
    query = torch.rand(2, 3, 64, 64)
    assert torch.allclose(package.detector.score(query)[0], fresh.score(query)[0], atol=1e-6)
    plain = FewShotDetector(load_checkpoint(checkpoint), global_weight=0.0).set_support(images)
    assert bool((fresh.score(query)[0] > plain.score(query)[0]).all())  # the image-level term is in the scores
