"""Cached teacher features: the same training inputs as the images give, computed once, kept on disk if asked."""

import os

import pytest
import torch

from monai_d2fad.data import EpisodeDataset, TeacherFeatureCache, discover_tasks
from monai_d2fad.networks import D2FAD
from tests.files import make_task


@pytest.fixture
def tasks(tmp_path):
    make_task(tmp_path, "alpha", n_train=6, seed=1)
    make_task(tmp_path, "beta", n_train=5, seed=2)
    return list(discover_tasks(str(tmp_path)).values())


def test_cached_features_train_the_student_as_the_images_do(tasks):
    model = D2FAD("resnet18", teacher_weights=None)
    plain = EpisodeDataset(tasks, shots=2, seed=0, image_size=64)
    cached = EpisodeDataset(tasks, shots=2, seed=0, image_size=64, teacher_features=TeacherFeatureCache(model.teacher))
    loader = {
        name: torch.utils.data.DataLoader(ds, batch_size=3) for name, ds in (("plain", plain), ("cached", cached))
    }
    a, b = next(iter(loader["plain"])), next(iter(loader["cached"]))
    assert torch.equal(a["query"], b["query_image"]) and torch.equal(a["support"], b["support_image"])
    assert [tuple(f.shape) for f in b["support"]] == [(3, 2, *f.shape[1:]) for f in b["query"]]
    model.train()
    out_a, out_b = model(a["query"], a["support"]), model(b["query"], b["support"])
    for x, y in zip(out_a.student_query + out_a.student_support, out_b.student_query + out_b.student_support):
        assert torch.allclose(x, y, atol=1e-5)


def test_disk_cache_is_written_once_and_reused(tasks, tmp_path):
    teacher = D2FAD("resnet18", teacher_weights=None).teacher
    cache = TeacherFeatureCache(teacher, cache_dir=str(tmp_path / "cache"), progress=False)
    first = EpisodeDataset(tasks, shots=2, image_size=64, teacher_features=cache)
    (path,) = [tmp_path / "cache" / f for f in os.listdir(tmp_path / "cache")]
    stamp = path.stat().st_mtime_ns
    again = EpisodeDataset(tasks, shots=2, image_size=64, teacher_features=cache)
    assert path.stat().st_mtime_ns == stamp
    assert all(torch.equal(x, y) for x, y in zip(first.features, again.features))
    other_size = EpisodeDataset(tasks, shots=2, image_size=32, teacher_features=cache)
    assert len(os.listdir(tmp_path / "cache")) == 2 and other_size.features[0].shape[-1] == 8


def test_features_of_augmented_images_cannot_be_cached(tasks):
    teacher = D2FAD("resnet18", teacher_weights=None).teacher
    with pytest.raises(ValueError, match="augment"):
        EpisodeDataset(tasks, shots=2, image_size=64, augment=True, teacher_features=TeacherFeatureCache(teacher))
