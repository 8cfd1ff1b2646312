"""The MONAI Label infer task and sample app on a PNG (needs the ``[label]`` extra; skipped without monailabel)."""

import base64
import io
import os
import shutil

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
    """A 48 x 60 (rows x columns) PNG: not square, so a transposed mask would not fit."""
    return write_png(tmp_path / "query.png", np.random.default_rng(2).integers(0, 256, (48, 60), dtype=np.uint8))


def test_infer_task_returns_score_decision_and_mask_and_heatmap_at_the_image_size(task_package_file, image):
    task = D2FADInferTask(task_package_file())
    mask_path, result = task({"image": image, "device": "cpu"})
    assert result["anomalous"] == (result["score"] >= result["threshold"]["value"])
    header, encoded = result["heatmap"].split(",", 1)
    assert header == "data:image/png;base64"
    with Image.open(io.BytesIO(base64.b64decode(encoded))) as heatmap:
        assert heatmap.size == (60, 48) and heatmap.mode == "RGB"
    with Image.open(mask_path) as mask:
        assert mask.size == (60, 48)
        assert set(np.unique(np.asarray(mask))) <= {0, 1}
    assert os.path.basename(mask_path).startswith("d2fad-mask-")  # the one file written; the server deletes it
    os.remove(mask_path)
    assert task.info()["labels"] == {"anomaly": 1}


def test_the_mask_marks_where_the_restored_map_reaches_the_threshold(task_package_file, image):
    task = D2FADInferTask(task_package_file())
    data = task.run_inferer(task.pre_transforms()[0]({"image": image}), device="cpu")
    restored = task.post_transforms()[0](data)["pred"]
    assert restored.shape == (1, 48, 60)
    task.package.threshold = {"method": "given", "value": float(restored.median())}
    mask_path, _ = task.writer(data | {"pred": restored})
    with Image.open(mask_path) as mask:
        assert np.array_equal(np.asarray(mask), (restored[0] >= restored.median()).numpy().astype(np.uint8))
    os.remove(mask_path)


def test_sample_app_serves_the_infer_task(task_package_file, image, tmp_path, monkeypatch):
    import importlib.util

    import monai_d2fad

    app_dir = str(tmp_path / "app")  # the app writes bin/ and model/ into its folder
    shutil.copytree(os.path.join(os.path.dirname(monai_d2fad.__file__), "label", "sample_app"), app_dir)
    monkeypatch.syspath_prepend(app_dir)  # as monailabel start_server does, for lib.configs
    spec = importlib.util.spec_from_file_location("d2fad_label_main", os.path.join(app_dir, "main.py"))
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    assert main.task_configs() == {"d2fad_anomaly": "lib.configs.d2fad_anomaly.D2FADAnomaly"}
    studies, package = os.path.dirname(image), task_package_file()
    app = main.D2FADApp(app_dir, studies, {"task_package": package})
    assert list(app.init_infers()) == ["d2fad_anomaly"]
    result = app.infer({"model": "d2fad_anomaly", "image": "query", "device": "cpu"})
    assert "score" in result["params"]
    os.remove(result["label"])
    with pytest.raises(ValueError, match="choose 'all' or among"):
        main.D2FADApp(app_dir, studies, {"task_package": package, "models": "nope"})
