"""srgan_lib.data: bad inputs, crops, augmentation, LR, determinism, DDP slices, dataset names."""

from __future__ import annotations

import struct
import warnings
import zlib

import numpy as np
import pytest
from conftest import random_rgb as _rgb
from PIL import Image

from srgan_lib import data, resize
from srgan_lib.errors import ConfigError, DataError

SCALE, CROP = 4, 16


def _ds(folder, **kw):
    kw.setdefault("cache", "ram")
    kw.setdefault("progress", False)
    return data.TrainDataset(folder, SCALE, kw.pop("crop_size", CROP), **kw)


def _one_warning(caplog, *needles):
    msgs = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and r.name == "srgan_lib.data"]
    assert len(msgs) == 1, msgs
    for needle in needles:
        assert needle in msgs[0], (needle, msgs[0])
    return msgs[0]


# ----------------------------------------------------------------------------- bad inputs


def test_non_image_and_truncated_files_are_skipped_with_one_warning(folder, caplog):
    (folder / "README.txt").write_text("not an image extension: ignored silently")
    (folder / "fake.png").write_text("<html>an error page saved as .png</html>")
    good = (folder / "img0.png").read_bytes()
    (folder / "cut.png").write_bytes(good[: len(good) // 2])
    with caplog.at_level("WARNING", logger="srgan_lib.data"):
        ds = _ds(folder)
    msg = _one_warning(caplog, "skipped 2 unreadable file(s)", "cut.png (cannot decode image",
                       "fake.png (not an image file")
    assert str(folder) in msg
    assert ds.names == [f"img{i}.png" for i in range(5)]


def test_grayscale_rgba_and_16bit_images_become_8bit_rgb(tmp_path):
    d = tmp_path / "modes"
    d.mkdir()
    gray = _rgb(1)[:, :, 0]
    Image.fromarray(gray, mode="L").save(d / "gray.png")
    rgba = np.zeros((40, 48, 4), np.uint8)
    rgba[:, :24] = (10, 20, 30, 255)  # opaque: the colour itself
    rgba[:, 24:] = (200, 100, 50, 0)  # transparent: composited on white
    Image.fromarray(rgba, mode="RGBA").save(d / "rgba.png")
    g16 = np.random.default_rng(2).integers(0, 65536, (40, 48)).astype(np.uint16)
    Image.fromarray(g16).save(d / "gray16.png")
    rgb16 = np.random.default_rng(3).integers(0, 65536, (40, 48, 3)).astype(np.uint16)
    _write_png16_rgb(d / "rgb16.png", rgb16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = _ds(d)
    img = dict(zip(ds.names, ds.images))
    assert all(im.shape == (40, 48, 3) and im.dtype == np.uint8 for im in ds.images)
    np.testing.assert_array_equal(img["gray.png"], np.repeat(gray[:, :, None], 3, axis=2))
    assert (img["rgba.png"][:, :24] == (10, 20, 30)).all() and (img["rgba.png"][:, 24:] == 255).all()
    expected16 = (g16.astype(np.int64) * 255 + 32767) // 65535  # round(v * 255 / 65535), integer arithmetic
    np.testing.assert_array_equal(img["gray16.png"], np.repeat(expected16[:, :, None], 3, axis=2))
    # 16-bit RGB: 8 bits at the right scale (PIL keeps the high byte), not wrapped or clipped.
    assert np.abs(img["rgb16.png"] - rgb16 / 257.0).max() < 1.0


def _write_png16_rgb(path, arr):
    """A 16-bit-per-channel RGB PNG written by hand (PIL cannot write one)."""
    h, w, _ = arr.shape

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    rows = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_tiny_images_are_skipped_with_one_warning_or_padded(folder, caplog):
    tiny = _rgb(9, 10, 12)
    Image.fromarray(tiny).save(folder / "tiny.png")
    Image.fromarray(_rgb(8, 50, 15)).save(folder / "narrow.png")
    with caplog.at_level("WARNING", logger="srgan_lib.data"):
        ds = _ds(folder)
    _one_warning(caplog, "2 image(s) smaller than crop_size=16 skipped", "narrow.png (50x15)", "tiny.png (10x12)")
    assert "tiny.png" not in ds.names and len(ds) == 5

    caplog.clear()
    with caplog.at_level("WARNING", logger="srgan_lib.data"):
        ds = _ds(folder, small="pad")
    _one_warning(caplog, "padded by reflection", "tiny.png (10x12)")
    padded = ds.images[ds.names.index("tiny.png")]
    assert padded.shape == (16, 16, 3)
    np.testing.assert_array_equal(padded[:10, :12], tiny)
    np.testing.assert_array_equal(padded[10, :12], tiny[8])  # reflection: row 10 mirrors row 8 about row 9
    np.testing.assert_array_equal(padded[:10, 12], tiny[:, 10])
    lr, hr = ds.host_batch(0, len(ds), seed=0)  # every image, the padded one included, gives a full crop
    assert hr.shape == (len(ds), 16, 16, 3) and lr.shape == (len(ds), 4, 4, 3)


def test_folder_without_usable_image_is_an_error_naming_it(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=rf"{empty} holds no image file"):
        _ds(empty)
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.png").write_text("nope")
    Image.fromarray(_rgb(0, 8, 8)).save(only_bad / "small.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match=rf"{only_bad} holds no usable training image for crop_size=16: "
                           r"x\.png \(not an image file.*small\.png \(8x8\)"):
            _ds(only_bad)
    with pytest.raises(DataError, match=r"does not exist"):
        _ds(tmp_path / "missing")


def test_crop_not_divisible_by_scale(folder):
    with pytest.raises(ConfigError, match=r"crop_size=18 is not divisible by scale=4"):
        data.TrainDataset(folder, 4, 18)
    with pytest.raises(ConfigError, match=r"small='grow'"):
        _ds(folder, small="grow")
    with pytest.raises(ConfigError, match=r"cache='disk'"):
        _ds(folder, cache="disk")


# ----------------------------------------------------------------------------- crops and LR


def test_shapes_and_crops_are_pieces_of_the_images(folder):
    ds = _ds(folder, augment=False)
    lr, hr = ds.host_batch(0, 6, seed=3)
    assert lr.shape == (6, 4, 4, 3) and hr.shape == (6, 16, 16, 3)
    assert lr.dtype == hr.dtype == np.uint8
    for (i, top, left, aug), crop in zip(ds.plan(0, 6, seed=3), hr):
        assert aug == 0
        np.testing.assert_array_equal(crop, ds.images[i][top : top + 16, left : left + 16])


def test_augmentation_covers_the_eight_flips_and_rotations(folder):
    ds = _ds(folder, augment=True)
    base = ds.images[0][3:19, 5:21]
    plan = np.array([[0, 3, 5, a] for a in range(8)])
    got = {ds.crops(plan)[k].tobytes() for k in range(8)}
    expected = {np.ascontiguousarray(t(np.rot90(base, k))).tobytes() for k in range(4) for t in (lambda x: x, np.fliplr)}
    assert got == expected and len(got) == 8
    # each code is its flips and transpose, in that order (made by PIL's single transforms)
    for a in range(8):
        ref = base[:, ::-1] if a & 1 else base
        ref = ref[::-1] if a & 2 else ref
        ref = ref.transpose(1, 0, 2) if a & 4 else ref
        np.testing.assert_array_equal(ds.crops(np.array([[0, 3, 5, a]]))[0], ref)
    codes = np.concatenate([ds.plan(s, 16, seed=0)[:, 3] for s in range(4)])
    assert set(codes.tolist()) == set(range(8))


@pytest.mark.equality
@pytest.mark.parametrize("scale,crop", [(4, 88), (2, 88)])
def test_lr_is_matlab_bicubic_of_the_hr_crop(div2k_hr_0004, scale, crop):
    # resize.matlab_downscale_batch is checked against imresize in tests/test_resize.py; here, that the
    # dataset applies it to its (augmented) crops at the right size
    ds = data.TrainDataset(div2k_hr_0004.parent, scale, crop, cache="ram", progress=False)
    lr, hr = ds.host_batch(step=5, batch_size=8, seed=1)
    assert lr.shape == (8, crop // scale, crop // scale, 3) and lr.dtype == np.uint8
    np.testing.assert_array_equal(lr, resize.matlab_downscale_batch(hr, crop // scale))
    ref = np.stack([resize.imresize(c, size=(crop // scale,) * 2, method="matlab") for c in hr]).astype(int)
    assert np.abs(lr.astype(int) - ref).max() <= 1 and (lr == ref).mean() > 0.9  # float32 ties aside


def test_other_resize_methods_use_imresize(folder):
    ds = _ds(folder, resize_method="pil", augment=False)
    lr, hr = ds.host_batch(0, 3, seed=0)
    for k in range(3):
        ref = np.asarray(Image.fromarray(hr[k]).resize((4, 4), Image.BICUBIC))  # PIL itself
        np.testing.assert_array_equal(lr[k], ref)


# ----------------------------------------------------------------------------- determinism and DDP


@pytest.mark.parametrize("sampling", ["epoch", "random"])
def test_batch_depends_only_on_seed_and_step(folder, sampling):
    a, b = _ds(folder), _ds(folder)  # two datasets: nothing carried from one call to the next
    made = [a.host_batch(step, 4, seed=7, sampling=sampling) for step in range(4)]
    for got, want in zip(b.host_batch(2, 4, seed=7, sampling=sampling), made[2]):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(made[0][1], made[1][1])
    assert not np.array_equal(b.host_batch(2, 4, seed=8, sampling=sampling)[1], made[2][1])


@pytest.mark.equality
@pytest.mark.parametrize("world_size", [2, 4])
def test_rank_slices_are_disjoint_and_make_up_the_global_batch(tmp_path, world_size):
    d = tmp_path / "eight"
    d.mkdir()
    for i in range(8):
        Image.fromarray(_rgb(i, 20, 20)).save(d / f"{i}.png")
    ds = _ds(d)
    lr1, hr1 = ds.host_batch(3, 8, seed=5)
    parts = [ds.host_batch(3, 8, seed=5, rank=r, world_size=world_size) for r in range(world_size)]
    # exact on every CPU: crops involve no arithmetic, and each image's LR comes from the same float32 BLAS
    # calls whatever else is in the batch (resize.matlab_downscale_batch), so even .5 ties round alike
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), hr1)
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), lr1)
    plan = ds.plan(3, 8, seed=5)  # an 8-image epoch in one batch: each rank gets different images
    per = 8 // world_size
    images = [set(plan[r * per : (r + 1) * per, 0].tolist()) for r in range(world_size)]
    assert sum(len(s) for s in images) == 8 and len(set().union(*images)) == 8


def test_epoch_sampling_is_one_crop_per_image_in_a_seeded_permutation(folder):
    ds = _ds(folder)  # 5 images, batch 5: one epoch per step
    assert ds.iters_per_epoch(5) == 1 and ds.iters_per_epoch(2) == 3 and ds.iters_per_epoch(64) == 1
    e0, e1 = ds.plan(0, 5, seed=1)[:, 0], ds.plan(1, 5, seed=1)[:, 0]
    assert sorted(e0.tolist()) == sorted(e1.tolist()) == list(range(5))
    orders = {tuple(ds.plan(s, 5, seed=1)[:, 0]) for s in range(6)}
    assert len(orders) > 1  # a fresh permutation each epoch
    # batch 2 straddles epochs: steps 0..4 cover two full epochs of 5 images exactly
    stream = np.concatenate([ds.plan(s, 2, seed=1)[:, 0] for s in range(5)])
    assert sorted(stream[:5].tolist()) == sorted(stream[5:].tolist()) == list(range(5))
    np.testing.assert_array_equal(stream[:5], e0)


# ----------------------------------------------------------------------------- dataset names


def test_dataset_names_and_div2k_layout(data_root):
    target = data_root / "DIV2K" / "DIV2K_train_HR"
    target.mkdir(parents=True)
    for i in range(2):
        Image.fromarray(_rgb(i)).save(target / f"000{i + 1}.png")
    (target / ".complete").write_text("{}")  # the download marker is not an image
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = data.TrainDataset("div2k", 4, 16, cache="ram", progress=False)
    assert ds.folder == target and ds.names == ["0001.png", "0002.png"]
    with pytest.raises(DataError, match=r"BSDS100 does not exist: run `srgan download bsds100`"):
        data.TrainDataset("bsds100", 4, 16)
    bsds = data_root / "BSDS100"  # as srgan download installs it: JPEGs named by id, and the marker
    bsds.mkdir()
    for iid in (3096, 8023):
        Image.fromarray(_rgb(iid, 32, 48)).save(bsds / f"{iid}.jpg", quality=95)
    (bsds / ".complete").write_text("{}")
    assert data.TrainDataset("bsds100", 4, 16, cache="ram", progress=False).names == ["3096.jpg", "8023.jpg"]


def test_tracked_set5_by_name(set5_dir, data_root):
    ds = data.TrainDataset("set5", 4, 88, cache="ram", progress=False)
    assert ds.folder == set5_dir and len(ds) == 5 and ds.iters_per_epoch(2) == 3
