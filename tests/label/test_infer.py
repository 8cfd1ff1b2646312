"""The MONAI Label infer task and sample app on a PNG (needs the ``[label]`` extra; skipped without monailabel)."""

import os

import numpy as np
import pytest
from PIL import Image

try:
    import monailabel.tasks.infer.basic_infer  # noqa: F401
except Exception as e:  # monailabel 0.8.5 imports only with its pins (pydicom<3 ...): a separate environment
    pytest.skip(f"monailabel not usable ({e}): see the README's MONAI Label section", allow_module_level=True)

from monai_d2fad.label import D2FADInferTask
from tests.files import write_png


@pytest.fixture
def image(tmp_path):
    return write_png(tmp_path / "query.png", np.random.default_rng(2).integers(0, 256, (48, 48), dtype=np.uint8))


def test_infer_task_returns_score_decision_heatmap_and_mask(task_package_file, image):
    task = D2FADInferTask(task_package_file())
    mask_path, result = task({"image": image, "device": "cpu"})
    assert result["anomalous"] == (result["score"] >= result["threshold"]["value"])
    with Image.open(result["heatmap"]) as heatmap:
        assert heatmap.size == (64, 64) and heatmap.mode == "RGB"
    with Image.open(mask_path) as mask:
        assert set(np.unique(np.asarray(mask))) <= {0, 1}
    assert task.info()["labels"] == {"anomaly": 1}


def test_sample_app_serves_the_infer_task(task_package_file, image, tmp_path):
    import importlib.util

    import monai_d2fad

    app_dir = os.path.join(os.path.dirname(monai_d2fad.__file__), "label", "sample_app")
    spec = importlib.util.spec_from_file_location("d2fad_label_main", os.path.join(app_dir, "main.py"))
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    studies = os.path.dirname(image)
    app = main.D2FADApp(app_dir, studies, {"task_package": task_package_file()})
    assert list(app.init_infers()) == ["d2fad_anomaly"]
    result = app.infer({"model": "d2fad_anomaly", "image": "query", "device": "cpu"})
    assert "score" in result["params"]
