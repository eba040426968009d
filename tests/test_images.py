"""Image reading, conversion and BT.601 luma, checked against PIL and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from srgan_lib import images
from srgan_lib.errors import DataError, ImageReadError


def _rgb(h=6, w=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def test_load_rgb_png_roundtrip(tmp_path):
    arr = _rgb()
    Image.fromarray(arr).save(tmp_path / "a.png")
    np.testing.assert_array_equal(images.load_image(tmp_path / "a.png"), arr)


def test_grayscale_is_replicated(tmp_path):
    gray = np.arange(30, dtype=np.uint8).reshape(6, 5)
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    out = images.load_image(tmp_path / "g.png")
    assert out.shape == (6, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_16bit_png_is_scaled_to_8bit(tmp_path):
    vals = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)  # 257 * k maps exactly to k
    Image.fromarray(vals).save(tmp_path / "d.png")
    out = images.load_image(tmp_path / "d.png")
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 255, 128])


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)  # opaque: kept
    rgba[0, 1] = (10, 20, 30, 0)  # transparent: white
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "t.png")
    out = images.load_image(tmp_path / "t.png")
    np.testing.assert_array_equal(out[0, 0], (10, 20, 30))
    np.testing.assert_array_equal(out[0, 1], (255, 255, 255))


def test_palette_and_cmyk_match_pil_conversion(tmp_path):
    arr = _rgb()
    Image.fromarray(arr).convert("P").save(tmp_path / "p.png")
    np.testing.assert_array_equal(images.load_image(tmp_path / "p.png"),
                                  np.asarray(Image.open(tmp_path / "p.png").convert("RGB")))
    Image.fromarray(arr).convert("CMYK").save(tmp_path / "c.jpg")
    out = images.load_image(tmp_path / "c.jpg")
    assert out.shape == (6, 5, 3) and out.dtype == np.uint8


def test_not_an_image_names_the_file(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    with pytest.raises(ImageReadError, match="notes.png"):
        images.load_image(bad)


def test_truncated_png_names_the_file(tmp_path):
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.png"):
        images.load_image(tmp_path / "cut.png")


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="nope.png"):
        images.load_image(tmp_path / "nope.png")


def test_tensor_roundtrip_and_range():
    arr = _rgb()
    t = images.to_tensor(arr)
    assert t.shape == (1, 3, 6, 5) and t.dtype == torch.float32
    assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0
    assert t[0, 1, 2, 3].item() == pytest.approx(arr[2, 3, 1] / 255.0)
    np.testing.assert_array_equal(images.to_uint8(t)[0], arr)
    np.testing.assert_array_equal(images.to_uint8(t[0]), arr)


def test_to_uint8_rounds_and_clamps():
    t = torch.tensor([-0.5, 0.0, 0.5 / 255, 1.4 / 255, 1.6 / 255, 1.0, 3.0]).view(1, 1, 1, 7).repeat(1, 3, 1, 1)
    np.testing.assert_array_equal(images.to_uint8(t)[0, 0, :, 0], [0, 0, 0, 1, 2, 255, 255])


def test_rgb_to_y_matches_matlab_formula_by_hand():
    # MATLAB: rgb2ycbcr(uint8([255 255 255])) -> Y = 235; black -> 16; pure red -> 81; green -> 145; blue -> 41
    px = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    np.testing.assert_array_equal(images.rgb_to_y(px)[0], [235, 16, 81, 145, 41])


def test_save_image_is_atomic_and_readable(tmp_path):
    arr = _rgb()
    out = images.save_image(images.to_tensor(arr), tmp_path / "sub" / "x.png")
    np.testing.assert_array_equal(images.load_image(out), arr)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.png"]  # no temp file left


def test_list_images_filters_and_errors(tmp_path):
    with pytest.raises(DataError, match="no image"):
        images.list_images(tmp_path)
    (tmp_path / "b.png").write_bytes(b"")
    (tmp_path / "a.JPG").write_bytes(b"")
    (tmp_path / "readme.txt").write_text("x")
    assert [p.name for p in images.list_images(tmp_path)] == ["a.JPG", "b.png"]
    with pytest.raises(DataError, match="not a folder"):
        images.list_images(tmp_path / "missing")


def test_mod_crop_and_center_crop():
    arr = np.zeros((10, 13, 3), dtype=np.uint8)
    assert images.mod_crop(arr, 4).shape == (8, 12, 3)
    cc = images.center_crop(np.arange(100).reshape(10, 10), 4)
    np.testing.assert_array_equal(cc[0], [33, 34, 35, 36])


def test_real_bridge_is_single_channel(set14_dir):
    # Set14's bridge.png is mode L: loaded as three equal channels.
    out = images.load_image(set14_dir / "bridge.png")
    assert out.ndim == 3 and (out[..., 0] == out[..., 2]).all()
