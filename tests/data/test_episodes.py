import pytest
import torch

from monai_d2fad.data import EpisodeDataset, discover_tasks
from tests.files import make_task


@pytest.fixture
def tasks(tmp_path):
    make_task(tmp_path, "alpha", n_train=6, seed=1)
    make_task(tmp_path, "beta", n_train=5, seed=2)
    return list(discover_tasks(str(tmp_path)).values())


def _same_image(a, b):
    return torch.allclose(a, b)


def test_items_and_collated_batches(tasks):
    ds = EpisodeDataset(tasks, shots=3, seed=0, image_size=32)
    assert len(ds) == 11
    item = ds[0]
    assert item["query"].shape == (3, 32, 32) and item["support"].shape == (3, 3, 32, 32)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["query"].shape == (4, 3, 32, 32) and batch["support"].shape == (4, 3, 3, 32, 32)


def test_supports_are_other_images_of_the_same_task(tasks):
    ds = EpisodeDataset(tasks, shots=4, seed=0, image_size=32)
    for i in range(len(ds)):
        support = ds.support_indices(i)
        assert i not in support and len(set(support)) == 4
        assert {ds.task_of[j] for j in support} == {ds.task_of[i]}


def test_redrawn_every_epoch_and_reproducible(tasks):
    ds = EpisodeDataset(tasks, shots=2, seed=7, image_size=32)
    epoch0 = [ds.support_indices(i) for i in range(len(ds))]
    ds.set_epoch(1)
    epoch1 = [ds.support_indices(i) for i in range(len(ds))]
    assert epoch0 != epoch1
    again = EpisodeDataset(tasks, shots=2, seed=7, image_size=32)
    assert [again.support_indices(i) for i in range(len(again))] == epoch0


def test_max_per_task_and_too_few_images(tasks):
    assert len(EpisodeDataset(tasks, shots=2, seed=0, image_size=32, max_per_task=3)) == 6
    with pytest.raises(ValueError, match="needs at least 6"):
        EpisodeDataset(tasks, shots=5, seed=0, image_size=32)


def test_augmentation_changes_images(tasks):
    plain = EpisodeDataset(tasks, shots=2, seed=0, image_size=32)
    aug = EpisodeDataset(tasks, shots=2, seed=0, image_size=32, augment=True)
    assert any(not _same_image(plain[i]["query"], aug[i]["query"]) for i in range(len(plain)))


def test_data_items_replace_the_tasks(tasks):
    """``train#dataset#data`` (MONAI Label's and MONAI FL's key): episodes from a given datalist of normals."""
    items = [item for task in tasks for item in task.normal()][:9]  # alpha's 6, beta's first 3
    ds = EpisodeDataset(None, shots=2, seed=0, image_size=32, data=items)
    assert len(ds) == 9 and set(ds.pools) == {"alpha", "beta"}
    with pytest.raises(ValueError, match="need a 'task'"):
        EpisodeDataset(None, shots=2, image_size=32, data=[{"image": items[0]["image"]}])
    with pytest.raises(ValueError, match="'beta' has fewer than K\\+1 = 4"):
        EpisodeDataset(None, shots=3, image_size=32, data=items)
