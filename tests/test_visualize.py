import torch

from monai_d2fad.visualize import episode_strip, jet, overlay


def test_jet_runs_blue_to_red():
    ends = jet(torch.tensor([0.0, 1.0]).view(2, 1, 1, 1))
    assert ends[0, 2] > ends[0, 0] and ends[1, 0] > ends[1, 2]


def test_overlay_uses_one_range_for_all_images():
    images = torch.zeros(2, 3, 4, 4)
    maps = torch.stack([torch.full((1, 4, 4), 0.1), torch.full((1, 4, 4), 0.9)])
    out = overlay(images, maps, vmin=0.0, vmax=1.0)
    assert out.shape == (2, 3, 4, 4) and float(out.min()) >= 0 and float(out.max()) <= 1
    assert not torch.allclose(out[0], out[1])  # per-image normalisation would make them equal


def test_episode_strip():
    batch = {"query": torch.rand(2, 3, 8, 8), "support": torch.rand(2, 3, 3, 8, 8)}
    strip, labels = episode_strip(batch)
    assert strip.shape == (2, 3, 8, 32) and labels == [None]
    assert torch.equal(strip[:, :, :, :8], batch["query"])
