import numpy as np
import pytest
import torch
from PIL import Image

from monai_d2fad.transforms import MODALITIES, modality_transform, normalize_modality
from tests.files import RAMP, write_png


def _fundus(path, size=(60, 80)):
    """A bright disc (field of view) off-centre on a black frame."""
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    disc = ((yy - 30) ** 2 + (xx - 45) ** 2) < 20**2
    img = np.zeros((*size, 3), np.uint8)
    img[disc] = (200, 90, 40)
    Image.fromarray(img).save(path)
    return str(path)


@pytest.mark.parametrize("modality", MODALITIES)
def test_every_preset_gives_rgb_in_unit_range(tmp_path, modality):
    path = write_png(tmp_path / "x.png", (RAMP * 255).astype(np.uint8))
    out = modality_transform(modality, 32)({"image": path})["image"]
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_fundus_crops_to_field_of_view(tmp_path):
    out = modality_transform("fundus", 32)({"image": _fundus(tmp_path / "f.png")})["image"]
    generic = modality_transform("generic", 32)({"image": _fundus(tmp_path / "f.png")})["image"]
    # the disc fills the fundus crop: more of the image is field of view than without cropping
    assert (out.mean(0) > 0.1).float().mean() > (generic.mean(0) > 0.1).float().mean() + 0.2


def test_percentile_presets_stretch_contrast(tmp_path):
    path = write_png(tmp_path / "flat.png", (0.4 + 0.2 * RAMP).__mul__(255).astype(np.uint8))
    generic = modality_transform("generic", 32)({"image": path})["image"]
    xray = modality_transform("xray", 32)({"image": path})["image"]
    assert float(generic.max() - generic.min()) < 0.25
    assert float(xray.max() - xray.min()) > 0.95


def test_evaluation_is_deterministic_and_training_augments(tmp_path):
    path = write_png(tmp_path / "x.png", (np.random.default_rng(0).random((48, 48)) * 255).astype(np.uint8))
    ev = modality_transform("generic", 32)
    assert torch.equal(ev({"image": path})["image"], ev({"image": path})["image"])
    tr = modality_transform("generic", 32, train=True)
    tr.set_random_state(0)
    outs = [tr({"image": path})["image"] for _ in range(6)]
    assert any(not torch.allclose(outs[0], o) for o in outs[1:])


def test_resize_keeps_borders(tmp_path):
    """Downsampling a white image gives white borders (no zero-padded smoothing)."""
    path = write_png(tmp_path / "white.png", np.full((100, 100), 255, np.uint8))
    out = modality_transform("generic", 32)({"image": path})["image"]
    assert float(out.min()) == pytest.approx(1.0)


def test_stain_normalisation_runs_on_he_like_tile(tmp_path):
    rng = np.random.default_rng(0)
    tile = np.full((64, 64, 3), (235, 200, 225), np.float64)
    for cy, cx in rng.integers(4, 60, (30, 2)):
        tile[cy - 3 : cy + 3, cx - 3 : cx + 3] = (110, 60, 150)
    tile = np.clip(tile + rng.normal(0, 6, tile.shape), 0, 255).astype(np.uint8)
    path = tmp_path / "he.png"
    Image.fromarray(tile).save(path)
    plain = modality_transform("histopathology", 32)({"image": str(path)})["image"]
    normed = modality_transform("histopathology", 32, stain_normalize=True)({"image": str(path)})["image"]
    assert normed.shape == (3, 32, 32) and float(normed.max()) <= 1
    assert not torch.allclose(plain, normed, atol=1e-3)


def test_modality_names():
    assert normalize_modality("X-ray") == "xray" and normalize_modality("MRI") == "mri"
    assert normalize_modality("fundus photo") == "fundus" and normalize_modality(None) == "generic"
    with pytest.raises(ValueError, match="Unsupported option 'ultrasound-3d'"):
        normalize_modality("ultrasound-3d")


@pytest.mark.parametrize("modality", ["generic", "xray", "fundus"])
def test_restore_map_brings_a_map_back_onto_the_source(tmp_path, modality):
    from monai_d2fad.transforms import restore_map

    path = _fundus(tmp_path / "f.png")  # 60 rows x 80 columns, the field of view off-centre
    preset = modality_transform(modality, 32, keep_source=True)
    out = preset({"image": path})
    source = out["image_source"]
    assert source.shape == (3, 60, 80) and float(source.max()) <= 1.0
    plain = modality_transform(modality, 32)({"image": path})["image"]
    assert torch.equal(out["image"].as_tensor(), plain)  # keeping the source changes nothing the model sees
    bright = (out["image"].as_tensor().mean(0, keepdim=True) > 0.3).float()  # a "map" that marks the disc
    restored = restore_map(preset, out["image"], bright)
    assert restored.shape == (1, 60, 80)
    disc = source.mean(0) > 0.3
    hit = (restored[0] > 0.5) == disc
    assert hit.float().mean() > 0.95  # lands on the disc of the source image, not shifted or transposed
