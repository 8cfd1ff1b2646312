"""CBAM blocks: shapes, what each mode weighs, and that ``none`` is the identity (DCAM without attention = STFPM)."""

import pytest
import torch

from monai_d2fad.networks import ATTENTION_MODES, ConvAttention


@pytest.mark.parametrize("mode", ATTENTION_MODES)
def test_attention_keeps_the_shape(mode):
    x = torch.randn(2, 16, 8, 8)
    assert ConvAttention(16, mode)(x).shape == x.shape


def test_none_is_the_identity_and_has_no_parameters():
    block = ConvAttention(16, "none")
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(block(x), x)
    assert not list(block.parameters())


def test_channel_attention_scales_whole_channels_and_spatial_attention_whole_locations():
    x = torch.rand(1, 64, 6, 6) + 0.5  # positive: the ratio is the weight
    channel = ConvAttention(64, "channel")(x) / x
    spatial = ConvAttention(64, "spatial")(x) / x
    assert torch.allclose(channel, channel[..., :1, :1].expand_as(channel), atol=1e-6)  # constant over locations
    assert torch.allclose(spatial, spatial[:, :1].expand_as(spatial), atol=1e-6)  # constant over channels
    assert channel.std() > 0 and spatial.std() > 0  # and they do weigh: not all the same


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="channel"):
        ConvAttention(8, "channels")
