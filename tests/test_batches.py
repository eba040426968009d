"""srgan_lib.batches: host batches to tensors, the batch iterator, the prefetch threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from srgan_lib import batches, data
from srgan_lib.errors import ConfigError


@pytest.fixture
def dataset(tmp_path):
    """Five random RGB PNGs of 40 x 48 pixels, 16-pixel crops, x4."""
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(5):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return data.TrainDataset(d, 4, 16, cache="ram", progress=False)


def test_to_device_is_uint8_over_255_in_nchw():
    lr = np.arange(2 * 3 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3, 3) * 9
    hr = np.full((2, 12, 12, 3), 255, np.uint8)
    hr[1, 4, 7] = (0, 1, 128)
    lr_t, hr_t = batches.to_device((lr, hr))
    assert lr_t.shape == (2, 3, 3, 3) and hr_t.shape == (2, 3, 12, 12) and lr_t.dtype == torch.float32
    # element by element: channel c of pixel (y, x) of image n is host[n, y, x, c] / 255, as float32 rounds it
    torch.testing.assert_close(lr_t, torch.from_numpy(lr.astype(np.float32) / np.float32(255)).permute(0, 3, 1, 2),
                               rtol=0, atol=0)
    assert hr_t[1, :, 4, 7].tolist() == [0.0, np.float32(1 / 255), np.float32(128 / 255)]
    assert hr_t.min() == 0 and hr_t.max() == 1
    # tensors as well as arrays, the same values
    torch.testing.assert_close(batches.to_device(tuple(torch.from_numpy(a) for a in (lr, hr))), (lr_t, hr_t),
                               rtol=0, atol=0)


def test_make_batch_is_the_host_batch_on_the_device(dataset):
    lr, hr = batches.make_batch(dataset, 3, 4, seed=2)
    lr_u8, hr_u8 = dataset.host_batch(3, 4, seed=2)
    assert lr.shape == (4, 3, 4, 4) and hr.shape == (4, 3, 16, 16)
    np.testing.assert_array_equal((hr * 255).round().byte().permute(0, 2, 3, 1).numpy(), hr_u8)
    np.testing.assert_array_equal((lr * 255).round().byte().permute(0, 2, 3, 1).numpy(), lr_u8)
    half = batches.make_batch(dataset, 3, 4, seed=2, rank=1, world_size=2)
    torch.testing.assert_close(half, (lr[2:], hr[2:]), rtol=0, atol=0)


def test_batch_arguments_are_checked(dataset):
    with pytest.raises(ConfigError, match=r"batch_size=6 is not divisible by world_size=4"):
        batches.train_batches(dataset, 6, seed=0, world_size=4)
    with pytest.raises(ConfigError, match=r"rank=2, world_size=2"):
        batches.train_batches(dataset, 4, seed=0, rank=2, world_size=2)
    with pytest.raises(ConfigError, match=r"sampling='epochs'"):
        batches.train_batches(dataset, 4, seed=0, sampling="epochs")
    with pytest.raises(ConfigError, match=r"start_step=-1"):
        batches.train_batches(dataset, 4, seed=0, start_step=-1)
    with pytest.raises(ConfigError, match="prefetch=-1"):
        batches.train_batches(dataset, 4, seed=0, prefetch=-1)


@pytest.mark.parametrize("sampling", ["epoch", "random"])
def test_train_batches_are_the_steps_in_order_from_start_step(dataset, sampling):
    it = batches.train_batches(dataset, 4, seed=7, start_step=2, sampling=sampling)
    for step in range(2, 6):
        want = batches.make_batch(dataset, step, 4, seed=7, sampling=sampling)
        torch.testing.assert_close(next(it), want, rtol=0, atol=0)
    assert not torch.equal(want[1], batches.make_batch(dataset, 4, 4, seed=7, sampling=sampling)[1])


@pytest.mark.parametrize("workers", [1, 3])
def test_prefetched_batches_are_the_batches_in_order(dataset, workers):
    it = batches._prefetched(dataset, 4, 7, 2, "cpu", 0, 1, "epoch", workers)  # the accelerator path, on the CPU
    for step in range(2, 9):
        torch.testing.assert_close(next(it), batches.make_batch(dataset, step, 4, seed=7), rtol=0, atol=0)
    threads = [t for t in threading.enumerate() if t.name.startswith("srgan-batches")]
    assert threads
    it.close()  # shuts the pool down
    assert not any(t.is_alive() for t in threads)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("method", ["matlab", "pil", "torch"])
def test_cuda_batches_equal_cpu_batches(div2k_hr_0004, method):
    ds = data.TrainDataset(div2k_hr_0004.parent, 4, 88, resize_method=method, cache="ram", progress=False)
    lr_cpu, hr_cpu = batches.make_batch(ds, 3, 32, seed=0)
    lr_gpu, hr_gpu = batches.make_batch(ds, 3, 32, seed=0, device="cuda")
    assert lr_gpu.is_cuda and hr_gpu.is_cuda
    # The same 8-bit pixels (both made on the CPU); the floats may differ by an ulp (CUDA divides as a multiply).
    torch.testing.assert_close(hr_gpu.cpu(), hr_cpu, rtol=1e-6, atol=0)
    torch.testing.assert_close(lr_gpu.cpu(), lr_cpu, rtol=1e-6, atol=0)
    prefetched = batches.train_batches(ds, 32, seed=0, start_step=3, device="cuda", prefetch=2)
    for step in range(3, 7):
        lr_p, hr_p = next(prefetched)
        lr_c, hr_c = batches.make_batch(ds, step, 32, seed=0)
        assert torch.equal((lr_p.cpu() * 255).round(), (lr_c * 255).round())
        assert torch.equal((hr_p.cpu() * 255).round(), (hr_c * 255).round())
    prefetched.close()
