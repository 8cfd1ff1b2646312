import numpy as np
import pytest
import torch
from PIL import Image

from monai_d2fad.data import load_image
from monai_d2fad.transforms import ImageReadError
from tests.files import RAMP, write_dicom, write_png

S = 32


def _check(t):
    assert t.shape == (3, S, S) and t.dtype == torch.float32
    assert float(t.min()) >= 0 and float(t.max()) <= 1
    return t


def _left_right(t):
    return float(t[:, :, :4].mean()), float(t[:, :, -4:].mean())


def test_png_8_and_16_bit_keep_their_scale(tmp_path):
    t8 = _check(load_image(write_png(tmp_path / "g8.png", (RAMP * 255).astype(np.uint8)), image_size=S))
    t16 = _check(load_image(write_png(tmp_path / "g16.png", (RAMP * 65535).astype(np.uint16)), image_size=S))
    assert float(t16.max()) > 0.95 and torch.allclose(t8, t16, atol=0.02)
    dark = _check(load_image(write_png(tmp_path / "dark16.png", (RAMP * 200).astype(np.uint16)), image_size=S))
    assert float(dark.max()) < 0.01  # a dark 16-bit image stays dark (no per-image stretch)


def test_orientation_rows_top_to_bottom_columns_left_to_right(tmp_path):
    arr = np.zeros((40, 50), np.uint8)
    arr[:10, :] = 255  # bright top band
    t = load_image(write_png(tmp_path / "top.png", arr), image_size=S)
    assert float(t[:, :4].mean()) > 0.9 and float(t[:, -4:].mean()) < 0.1
    left, right = _left_right(load_image(write_png(tmp_path / "ramp.png", (RAMP * 255).astype(np.uint8)), image_size=S))
    assert right > left + 0.5


@pytest.mark.parametrize("mode", ["RGBA", "P", "LA"])
def test_png_colour_modes_become_rgb(tmp_path, mode):
    rgb = (np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8)
    img = Image.fromarray(rgb).convert(mode)
    path = tmp_path / f"{mode}.png"
    img.save(path)
    t = _check(load_image(path, image_size=S))
    reference = _check(load_image(write_png(tmp_path / "ref.png", np.asarray(img.convert("RGB"))), image_size=S))
    assert torch.allclose(t, reference, atol=1e-5)


def test_jpeg(tmp_path):
    path = tmp_path / "x.jpg"
    Image.fromarray((RAMP * 255).astype(np.uint8)).save(path, quality=95)
    left, right = _left_right(_check(load_image(path, image_size=S)))
    assert right > left + 0.5


def test_dicom_monochrome1_is_inverted(tmp_path):
    arr = (RAMP * 4095).astype(np.uint16)
    m2 = _check(load_image(write_dicom(tmp_path / "m2.dcm", arr), image_size=S))
    m1 = _check(load_image(write_dicom(tmp_path / "m1.dcm", arr, "MONOCHROME1"), image_size=S))
    assert _left_right(m2)[1] > _left_right(m2)[0] + 0.5
    assert _left_right(m1)[1] < _left_right(m1)[0] - 0.5
    assert torch.allclose(m1, 1 - m2, atol=1e-5)


def test_dicom_rescale_and_window(tmp_path):
    arr = (RAMP * 1000).astype(np.uint16)  # stored 0..1000 -> HU -1000..0 with slope 1, intercept -1000
    path = write_dicom(tmp_path / "ct.dcm", arr, slope=1.0, intercept=-1000, window=(-500, 200), modality="CT")
    t = _check(load_image(path, image_size=S))
    # window -600..-400 HU: everything left of it is black, right of it white
    assert float(t[:, :, :8].max()) == 0.0 and float(t[:, :, -8:].min()) == 1.0
    ct = _check(load_image(path, modality="ct", image_size=S, ct_window=(-1000, 2000)))
    # the preset's window -2000..0 HU on rescaled values -1000..0 HU: 0.5 (left) to 1 (right)
    assert float(ct.mean()) == pytest.approx(0.75, abs=0.02)


def test_nifti_2d_and_3d_slices(tmp_path):
    nib = pytest.importorskip("nibabel")
    vol = np.zeros((20, 30, 5), np.float32)
    for k in range(5):
        vol[4 * k : 4 * k + 4, :, k] = 10  # a bright band at another place in each slice
    path = tmp_path / "vol.nii.gz"
    nib.save(nib.Nifti1Image(vol, np.eye(4)), str(path))
    middle = _check(load_image(path, modality="generic", image_size=S))
    first = _check(load_image(path, modality="generic", image_size=S, slice_index=0))
    assert not torch.allclose(middle, first)
    axis0 = _check(load_image(path, image_size=S, slice_axis=0, slice_index=3))
    assert axis0.shape == (3, S, S)
    with pytest.raises(ImageReadError, match="slice 9 out of range"):
        load_image(path, image_size=S, slice_index=9)
    two_d = tmp_path / "img2d.nii"
    nib.save(nib.Nifti1Image((RAMP.T * 100).astype(np.float32), np.eye(4)), str(two_d))
    _check(load_image(two_d, image_size=S))


def test_itk_mha_matches_png_orientation(tmp_path):
    itk = pytest.importorskip("itk")
    path = str(tmp_path / "ramp.mha")
    itk.imwrite(itk.image_from_array((RAMP * 1000).astype(np.float32)), path)
    left, right = _left_right(_check(load_image(path, image_size=S)))
    assert right > left + 0.5


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n truncated", b"", b"plain text"])
def test_corrupt_file_error_names_the_file(tmp_path, content):
    path = tmp_path / "broken_scan_0042.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=r"broken_scan_0042.png"):
        load_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="does not exist"):
        load_image(tmp_path / "nope.png")


def test_all_slices_of_a_volume(tmp_path):
    nib = pytest.importorskip("nibabel")
    from monai_d2fad.data import ImageDataset, expand_slices

    vol = np.zeros((20, 30, 4), np.float32)
    for k in range(4):
        vol[:, 5 * k : 5 * k + 5, k] = 1.0  # a band that moves with the slice
    path = str(tmp_path / "vol.nii.gz")
    nib.save(nib.Nifti1Image(vol, np.eye(4)), path)
    png = write_png(tmp_path / "flat.png", (RAMP * 255).astype(np.uint8))
    items = expand_slices([{"image": path, "label": 0}, {"image": png, "label": 1}])
    assert [it.get("slice") for it in items] == [0, 1, 2, 3, None]
    ds = ImageDataset(items, image_size=S, progress=False)
    slices = torch.stack([ds[i]["image"] for i in range(4)])
    assert all(not torch.allclose(slices[0], s) for s in slices[1:])
    assert torch.allclose(slices[2], load_image(path, image_size=S, slice_index=2))
