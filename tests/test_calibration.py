import pytest
import torch

from monai_d2fad.calibration import calibrate_threshold, leave_one_out_scores
from monai_d2fad.inference import FewShotDetector
from tests.files import make_task


def test_leave_one_out_threshold_is_the_highest_held_out_score(tiny_model):
    support = torch.rand(3, 3, 64, 64)
    det = FewShotDetector(tiny_model()).set_support(support)
    loo = leave_one_out_scores(det, support)
    expected = FewShotDetector(det.model).set_support(support[1:]).score(support[:1])[0]
    assert loo.shape == (3,) and torch.allclose(loo[0], expected[0])
    calibration = calibrate_threshold(det, support)
    assert calibration["method"] == "loo" and calibration["value"] == pytest.approx(float(loo.max()))
    with pytest.raises(ValueError, match="at least 2"):
        leave_one_out_scores(det, support[:1])


def test_validation_threshold_best_f1(tiny_model, tmp_path):
    task = make_task(tmp_path, "val_task", n_good=3, n_bad=3, size=64)
    support = torch.rand(2, 3, 64, 64)
    det = FewShotDetector(tiny_model()).set_support(support)
    calibration = calibrate_threshold(det, support, validation_dir=f"{task}/test", image_size=64)
    assert calibration["method"] == "validation" and calibration["count"] == 6
    assert 0.0 < calibration["f1"] <= 1.0 and calibration["value"] > 0
