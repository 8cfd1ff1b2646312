import pytest
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
    strip = episode_strip(batch)
    assert strip.shape == (2, 3, 8, 32)
    assert torch.equal(strip[:, :, :, :8], batch["query"])


def test_threshold_scale_puts_the_threshold_mid_scale_and_never_saturates():
    from monai_d2fad.visualize import threshold_scale

    v = threshold_scale(torch.tensor([0.0, 0.2, 0.4, 2.0, 20.0, -1.0]), threshold=0.2)
    assert v[1] == 0.5 and v[0] == 0 and v[-1] == 0  # negative map values count as 0
    assert bool((v[1:5].diff() > 0).all()) and v[4] < 1  # ten and a hundred times the threshold stay apart
    with pytest.raises(ValueError, match="positive threshold"):
        threshold_scale(v, 0.0)


def test_threshold_colorbar_is_ticked_in_map_values():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from monai_d2fad.visualize import THRESHOLD_TICKS, draw_threshold_colorbar

    fig, ax = plt.subplots()
    draw_threshold_colorbar(ax, 0.25)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [f"{t * 0.25:.3g}" for t in THRESHOLD_TICKS]
    assert ax.get_yticks()[2] == pytest.approx(0.5)  # the threshold, mid-scale
    plt.close(fig)


def test_heatmap_figure_uses_the_given_colour_range():
    from monai_d2fad.visualize import heatmap_figure

    figure = heatmap_figure(torch.rand(3, 3, 16, 16), torch.rand(3, 1, 16, 16) * 5, 0.0, 2.0)
    images = [ax for ax in figure.axes if ax.get_images()]
    colour_bar = figure.axes[-1]
    assert len(images) == 6 and colour_bar.get_ylim() == pytest.approx((0.0, 2.0))  # input and map per image
