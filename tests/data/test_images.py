import os

import pytest
import torch

from monai_d2fad.data import ImageDataset, discover_tasks, load_image
from monai_d2fad.transforms import ImageReadError
from tests.files import make_task


@pytest.fixture
def items(tmp_path):
    make_task(tmp_path, "alpha", n_train=4)
    items = discover_tasks(str(tmp_path))["alpha"].items("train")
    broken = os.path.join(os.path.dirname(items[0]["image"]), "zz_corrupt.png")
    with open(broken, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n garbage")
    return [*items, dict(items[0], image=broken)]


def test_corrupt_file_raises_with_its_name(items):
    with pytest.raises(ImageReadError, match=r"zz_corrupt.png"):
        ImageDataset(items, image_size=32, progress=False)


def test_bulk_mode_skips_and_reports(items):
    with pytest.warns(UserWarning, match="zz_corrupt.png"):
        ds = ImageDataset(items, image_size=32, on_error="skip", progress=False)
    assert len(ds) == 4 and len(ds.skipped) == 1 and ds.skipped[0].endswith("zz_corrupt.png")
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["label"] == 0 and os.path.isfile(item["path"])


def test_disk_cache(items, tmp_path):
    good = items[:4]
    first = ImageDataset(good, image_size=32, cache_dir=str(tmp_path / "cache"))
    assert any(os.scandir(tmp_path / "cache"))
    second = ImageDataset(good, image_size=32, cache_dir=str(tmp_path / "cache"))
    assert (first[1]["image"] == second[1]["image"]).all()


def test_load_image_takes_list_settings_as_a_json_config_gives_them(items):
    path = items[0]["image"]
    from_json = load_image(path, "xray", 32, percentiles=[1.0, 99.0])
    assert torch.equal(from_json, load_image(path, "xray", 32, percentiles=(1.0, 99.0)))
