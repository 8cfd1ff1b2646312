import os

import pytest

from monai_d2fad.checkpoint import load_checkpoint
from monai_d2fad.demo import main


def test_demo_trains_scores_and_refuses_to_overwrite(tmp_path):
    out = str(tmp_path / "demo")
    auroc = main(["--output", out, "--epochs", "1", "--shots", "2", "--image_size", "32"])
    assert 0.0 <= auroc <= 1.0
    model = load_checkpoint(os.path.join(out, "d2fad_demo.pt"))
    assert model.config["teacher"] == "efficientnet_lite0"
    with pytest.raises(SystemExit, match="--overwrite"):
        main(["--output", out, "--epochs", "1", "--shots", "2", "--image_size", "32"])
