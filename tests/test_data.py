"""srgan_lib.data and srgan_lib.cache: bad inputs, crops, LR, determinism, DDP slices, the cache."""

from __future__ import annotations

import os
import struct
import threading
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from srgan_lib import cache, data, resize
from srgan_lib.errors import ConfigError, DataError, ImageReadError

SCALE, CROP = 4, 16


def _rgb(seed, h=40, w=48):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def folder(tmp_path):
    """Five random RGB PNGs of 40 x 48 pixels."""
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(5):
        Image.fromarray(_rgb(i)).save(d / f"img{i}.png")
    return d


def _ds(folder, tmp_path=None, **kw):
    kw.setdefault("cache", "ram")
    kw.setdefault("progress", False)
    if tmp_path is not None:
        kw.setdefault("cache_dir", tmp_path / "cache")
    return data.TrainDataset(folder, SCALE, kw.pop("crop_size", CROP), **kw)


def _one_warning(record, *needles):
    msgs = [str(w.message) for w in record if issubclass(w.category, UserWarning)]
    assert len(msgs) == 1, msgs
    for needle in needles:
        assert needle in msgs[0], (needle, msgs[0])
    return msgs[0]


# ----------------------------------------------------------------------------- bad inputs


def test_non_image_and_truncated_files_are_skipped_with_one_warning(folder):
    (folder / "README.txt").write_text("not an image extension: ignored silently")
    (folder / "fake.png").write_text("<html>an error page saved as .png</html>")
    good = (folder / "img0.png").read_bytes()
    (folder / "cut.png").write_bytes(good[: len(good) // 2])
    with pytest.warns(UserWarning) as record:
        ds = _ds(folder)
    msg = _one_warning(record, "skipped 2 unreadable file(s)", "cut.png (cannot decode image",
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


def test_tiny_images_are_skipped_with_one_warning_or_padded(folder):
    tiny = _rgb(9, 10, 12)
    Image.fromarray(tiny).save(folder / "tiny.png")
    Image.fromarray(_rgb(8, 50, 15)).save(folder / "narrow.png")
    with pytest.warns(UserWarning) as record:
        ds = _ds(folder)
    _one_warning(record, "2 image(s) smaller than crop_size=16 skipped", "narrow.png (50x15)", "tiny.png (10x12)")
    assert "tiny.png" not in ds.names and len(ds) == 5

    with pytest.warns(UserWarning) as record:
        ds = _ds(folder, small="pad")
    _one_warning(record, "padded by reflection", "tiny.png (10x12)")
    padded = ds.images[ds.names.index("tiny.png")]
    assert padded.shape == (16, 16, 3)
    np.testing.assert_array_equal(padded[:10, :12], tiny)
    np.testing.assert_array_equal(padded[10, :12], tiny[8])  # reflection: row 10 mirrors row 8 about row 9
    np.testing.assert_array_equal(padded[:10, 12], tiny[:, 10])
    lr, hr = ds.batch(0, len(ds), seed=0)  # every image, the padded one included, gives a full crop
    assert hr.shape == (len(ds), 3, 16, 16)


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


def test_batch_arguments_are_checked(folder):
    ds = _ds(folder)
    with pytest.raises(ConfigError, match=r"batch_size=6 is not divisible by world_size=4"):
        data.train_batches(ds, 6, seed=0, world_size=4)
    with pytest.raises(ConfigError, match=r"rank=2, world_size=2"):
        data.train_batches(ds, 4, seed=0, rank=2, world_size=2)
    with pytest.raises(ConfigError, match=r"sampling='epochs'"):
        data.train_batches(ds, 4, seed=0, sampling="epochs")


# ----------------------------------------------------------------------------- crops and LR


def test_shapes_ranges_and_crops_are_pieces_of_the_images(folder):
    ds = _ds(folder, augment=False)
    lr, hr = next(data.train_batches(ds, 6, seed=3))
    assert lr.shape == (6, 3, 4, 4) and hr.shape == (6, 3, 16, 16)
    assert lr.dtype == hr.dtype == torch.float32
    assert 0 <= hr.min() and hr.max() <= 1 and 0 <= lr.min() and lr.max() <= 1
    for (i, top, left, aug), crop in zip(ds.plan(0, 6, seed=3), hr):
        assert aug == 0
        expected = ds.images[i][top : top + 16, left : left + 16]
        np.testing.assert_array_equal((crop.permute(1, 2, 0) * 255).round().byte().numpy(), expected)


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


def _near_ties(crops: np.ndarray, out: int, band: float = 1e-3) -> np.ndarray:
    """N x out x out x 3 mask of the LR pixels whose rounding could go either way in float32.

    MATLAB bicubic of uint8 images rounds after each pass (rows, then columns), and the
    symmetric kernel makes exact .5 ties common (~1 % of the pixels at x2: the mean of two
    neighbours with an odd sum). Computed in float64 a tie is exact; the float32 fast path
    and the tensor path land within float32's error of it (<= 16 terms of <= 255 x |w| <= 1:
    < 2.5e-4, hence ``band``) on a side that depends on the CPU's summation order. A pixel
    is marked when its own column pass, or any row-pass value it reads, is within ``band`` of a tie.
    """
    n, crop = crops.shape[:2]
    mat = data._matlab_matrix(crop, out).astype(np.float64)
    rows = np.matmul(mat, crops.astype(np.float64).reshape(n, crop, crop * 3)).reshape(n, out, crop, 3)
    cols = np.einsum("nikc,jk->nijc", np.clip(np.rint(rows), 0, 255), mat)
    tie = lambda v: np.abs(v - np.floor(v) - 0.5) < band  # noqa: E731
    return tie(cols) | (np.einsum("nikc,jk->nijc", tie(rows).astype(float), (mat != 0).astype(float)) > 0)


@pytest.mark.equality
@pytest.mark.parametrize("scale,crop", [(4, 88), (2, 88), (4, 128)])
def test_lr_equals_imresize_of_the_hr_crop(div2k_hr_0004, tmp_path, scale, crop):
    ds = data.TrainDataset(div2k_hr_0004.parent, scale, crop, cache="ram", progress=False)
    lr, hr = ds.batch(step=5, batch_size=8, seed=1)
    hr_u8 = (hr * 255).round().byte()
    ties = _near_ties(hr_u8.permute(0, 2, 3, 1).numpy(), crop // scale)
    assert ties.mean() < 0.1  # the exact comparison below still covers >= 90 % of the pixels (x2: 92.7 %)
    ref = np.stack([resize.imresize(hr_u8[k].permute(1, 2, 0).numpy(), size=(crop // scale,) * 2, method="matlab")
                    for k in range(8)]).astype(int)
    # the fast path (float32 matrix products) and, on the uint8 tensor batch, imresize's tensor path (what
    # an accelerator runs) give MATLAB's pixels: exactly, except at a float32 tie, by at most one grey level
    for got in (lr, resize.imresize(hr_u8, size=(crop // scale,) * 2, method="matlab").float() / 255):
        diff = np.abs((got * 255).round().int().permute(0, 2, 3, 1).numpy() - ref)
        assert diff[~ties].max() == 0 and diff.max() <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("method", ["matlab", "pil", "torch"])
def test_cuda_batches_equal_cpu_batches(div2k_hr_0004, method):
    ds = data.TrainDataset(div2k_hr_0004.parent, 4, 88, resize_method=method, cache="ram", progress=False)
    lr_cpu, hr_cpu = ds.batch(step=3, batch_size=32, seed=0)
    lr_gpu, hr_gpu = ds.batch(step=3, batch_size=32, seed=0, device="cuda")
    assert lr_gpu.is_cuda and hr_gpu.is_cuda
    # The same 8-bit pixels (both made on the CPU); the floats may differ by an ulp (CUDA divides as a multiply).
    torch.testing.assert_close(hr_gpu.cpu(), hr_cpu, rtol=1e-6, atol=0)
    torch.testing.assert_close(lr_gpu.cpu(), lr_cpu, rtol=1e-6, atol=0)
    prefetched = data.train_batches(ds, 32, seed=0, start_step=3, device="cuda", prefetch=2)
    for step in range(3, 7):
        lr_p, hr_p = next(prefetched)
        lr_c, hr_c = ds.batch(step=step, batch_size=32, seed=0)
        assert torch.equal((lr_p.cpu() * 255).round(), (lr_c * 255).round())
        assert torch.equal((hr_p.cpu() * 255).round(), (hr_c * 255).round())
    prefetched.close()


@pytest.mark.parametrize("workers", [1, 3])
def test_prefetched_batches_are_the_batches_in_order(folder, workers):
    ds = _ds(folder)
    it = data._prefetched(ds, 4, 7, 2, "cpu", 0, 1, "epoch", workers)  # the accelerator path, run on the CPU
    for step in range(2, 9):
        for got, want in zip(next(it), ds.batch(step, 4, seed=7)):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
    threads = [t for t in threading.enumerate() if t.name.startswith("srgan-batches")]
    assert threads
    it.close()  # shuts the pool down
    assert not any(t.is_alive() for t in threads)
    with pytest.raises(ConfigError, match="prefetch=-1"):
        data.train_batches(ds, 4, seed=0, prefetch=-1)


def test_other_resize_methods_use_imresize(folder):
    ds = _ds(folder, resize_method="pil", augment=False)
    lr, hr = ds.batch(0, 3, seed=0)
    hr_u8 = (hr * 255).round().byte().permute(0, 2, 3, 1).numpy()
    for k in range(3):
        ref = np.asarray(Image.fromarray(hr_u8[k]).resize((4, 4), Image.BICUBIC))  # PIL itself
        np.testing.assert_array_equal((lr[k].permute(1, 2, 0) * 255).round().byte().numpy(), ref)


# ----------------------------------------------------------------------------- determinism and DDP


@pytest.mark.parametrize("sampling", ["epoch", "random"])
def test_batch_depends_only_on_seed_and_step(folder, sampling):
    a, b = _ds(folder), _ds(folder)
    it = data.train_batches(a, 4, seed=7, sampling=sampling)
    batches = [next(it) for _ in range(4)]
    resumed = next(data.train_batches(b, 4, seed=7, start_step=2, sampling=sampling))
    torch.testing.assert_close(resumed, batches[2], rtol=0, atol=0)
    assert not torch.equal(batches[0][1], batches[1][1])
    other_seed = next(data.train_batches(b, 4, seed=8, start_step=2, sampling=sampling))
    assert not torch.equal(other_seed[1], batches[2][1])


@pytest.mark.equality
@pytest.mark.parametrize("world_size", [2, 4])
def test_rank_slices_are_disjoint_and_make_up_the_global_batch(tmp_path, world_size):
    d = tmp_path / "eight"
    d.mkdir()
    for i in range(8):
        Image.fromarray(_rgb(i, 20, 20)).save(d / f"{i}.png")
    ds = _ds(d)
    lr1, hr1 = ds.batch(3, 8, seed=5)
    parts = [ds.batch(3, 8, seed=5, rank=r, world_size=world_size) for r in range(world_size)]
    # exact on every CPU: crops involve no arithmetic, and each image's LR comes from the same float32 BLAS
    # calls whatever else is in the batch (data._matlab_downscale_np), so even .5 ties round alike
    torch.testing.assert_close(torch.cat([p[1] for p in parts]), hr1, rtol=0, atol=0)
    torch.testing.assert_close(torch.cat([p[0] for p in parts]), lr1, rtol=0, atol=0)
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


# ----------------------------------------------------------------------------- cache


def test_mmap_cache_is_built_once_and_reused(folder, tmp_path):
    (folder / "fake.png").write_text("no")
    with pytest.warns(UserWarning, match="fake.png"):
        first = _ds(folder, tmp_path, cache="mmap")
    assert first.store.mode == "mmap" and first.store.built
    files = sorted(p.name for p in (tmp_path / "cache").iterdir() if p.suffix in (".u8", ".json"))
    assert len(files) == 2 and first.store.cache_file.stat().st_size == 5 * 40 * 48 * 3
    mtime = first.store.cache_file.stat().st_mtime_ns
    with pytest.warns(UserWarning, match="fake.png"):  # the stored list of unreadable files is reported again
        second = _ds(folder, tmp_path, cache="mmap")
    assert not second.store.built and second.store.cache_file == first.store.cache_file
    assert second.store.cache_file.stat().st_mtime_ns == mtime
    assert isinstance(second.images[0].base, np.memmap) or isinstance(second.images[0], np.memmap)
    for name, im in zip(second.names, second.images):
        np.testing.assert_array_equal(im, np.asarray(Image.open(folder / name)))
    torch.testing.assert_close(second.batch(4, 4, seed=0), first.batch(4, 4, seed=0), rtol=0, atol=0)
    # auto reuses an existing cache file too
    with pytest.warns(UserWarning):
        assert not _ds(folder, tmp_path, cache="auto").store.built

    Image.fromarray(_rgb(42)).save(folder / "img9.png")  # the folder changed: rebuilt, the stale file removed
    with pytest.warns(UserWarning):
        third = _ds(folder, tmp_path, cache="mmap")
    assert third.store.built and len(third) == 6 and third.store.cache_file != first.store.cache_file
    assert not first.store.cache_file.exists()


def test_auto_chooses_ram_or_mmap_from_available_memory(folder, tmp_path, monkeypatch):
    monkeypatch.delenv("SRGAN_CACHE", raising=False)
    monkeypatch.setattr(cache, "available_memory", lambda: 10**9)
    assert _ds(folder, tmp_path, cache="auto").store.mode == "ram"
    assert not (tmp_path / "cache").exists()
    monkeypatch.setattr(cache, "available_memory", lambda: 5 * 40 * 48 * 3)  # the images need it all
    assert _ds(folder, tmp_path, cache="auto").store.mode == "mmap"
    monkeypatch.setenv("SRGAN_CACHE", "ram")
    assert cache.choose_mode("auto", 10**15) == "ram"
    assert cache.choose_mode("mmap", 1) == "mmap"
    monkeypatch.setenv("SRGAN_CACHE", "gpu")
    with pytest.raises(ConfigError, match="SRGAN_CACHE='gpu'"):
        cache.choose_mode("auto", 1)
    assert cache.available_memory() is None or cache.available_memory() > 0


# ----------------------------------------------------------------------------- layouts and evaluation


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
    ev = data.EvalDataset("bsds100", 4)
    assert [name for name, _, _ in ev] == ["3096", "8023"]
    assert data.TrainDataset("bsds100", 4, 16, cache="ram", progress=False).names == ["3096.jpg", "8023.jpg"]


def test_set5_folder(set5_dir):
    ds = data.TrainDataset(set5_dir, 4, 88, cache="ram", progress=False)
    assert len(ds) == 5 and ds.iters_per_epoch(2) == 3


def test_eval_dataset_protocols(set5_dir):
    std = data.EvalDataset(set5_dir, 4)
    assert len(std) == 5
    name, hr, lr = std[list(p.stem for p in std.paths).index("butterfly")]
    raw = np.asarray(Image.open(set5_dir / "butterfly.png").convert("RGB"))
    h, w = raw.shape[0] // 4 * 4, raw.shape[1] // 4 * 4
    np.testing.assert_array_equal(hr, raw[:h, :w])
    np.testing.assert_array_equal(lr, resize.imresize(hr, size=(h // 4, w // 4), method="matlab"))

    paper = data.EvalDataset(set5_dir, 4, protocol="paper", limit=2, max_side=120)
    items = list(paper)
    assert len(items) == 2 and [n for n, _, _ in items] == [p.stem for p in sorted(set5_dir.iterdir())][:2]
    for _, hr, lr in items:
        assert hr.shape[0] == hr.shape[1] <= 120 and hr.shape[0] % 4 == 0
        ref = np.asarray(Image.fromarray(hr).resize((hr.shape[1] // 4, hr.shape[0] // 4), Image.BICUBIC))
        np.testing.assert_array_equal(lr, ref)
    with pytest.raises(ConfigError, match="protocol='ntire'"):
        data.EvalDataset(set5_dir, 4, protocol="ntire")


def test_eval_dataset_is_strict_about_unreadable_files(folder):
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ev = data.EvalDataset(folder, 4)
    with pytest.raises(ImageReadError, match="broken.png"):
        list(ev)
    assert os.path.exists(folder / "broken.png")
