"""PSNR and SSIM against scikit-image, SciPy and hand-computed values; the two protocols on Set5.

The metrics are :mod:`srgan_lib.metrics`, the protocols :mod:`srgan_lib.protocols`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import bicubic_pair
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srgan_lib import images, metrics


def _t(arr) -> torch.Tensor:
    """H x W (x C) array -> 1 x C x H x W float64 tensor (values unchanged)."""
    arr = np.asarray(arr, dtype=np.float64)
    arr = arr[..., None] if arr.ndim == 2 else arr
    return torch.from_numpy(arr).permute(2, 0, 1)[None].contiguous()


# ----------------------------------------------------------------------------- PSNR


def test_psnr_hand_computed():
    hr = torch.zeros(2, 3, 8, 8, dtype=torch.float64)
    sr = hr.clone()
    sr[0] += 0.1  # MSE 0.01 -> 10 log10(1 / 0.01) = 20 dB
    values = metrics.psnr(sr, hr)
    assert values[0].item() == pytest.approx(20.0, abs=1e-9)
    assert values[1].item() == float("inf")
    # the same error on the 0-255 scale
    assert metrics.psnr(sr * 255, hr * 255, data_range=255).tolist()[0] == pytest.approx(20.0, abs=1e-9)


def test_psnr_equals_skimage_on_real_images(set5_dir):
    sr, hr = bicubic_pair(set5_dir / "bird.png")
    for crop in (0, 2):
        ours = metrics.psnr(_t(sr), _t(hr), data_range=255, crop_border=crop).item()
        s = slice(crop, -crop) if crop else slice(None)
        ref = peak_signal_noise_ratio(hr[s, s], sr[s, s], data_range=255)
        assert ours == pytest.approx(ref, abs=1e-10)


# ----------------------------------------------------------------------------- SSIM


def test_ssim_equals_skimage_on_real_images(set5_dir, set14_dir):
    kwargs = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    sr, hr = bicubic_pair(set5_dir / "butterfly.png")
    y_sr, y_hr = images.rgb_to_y(sr).astype(np.float64), images.rgb_to_y(hr).astype(np.float64)
    ours = metrics.ssim(_t(y_sr), _t(y_hr), data_range=255).item()
    assert ours == pytest.approx(structural_similarity(y_sr, y_hr, **kwargs), abs=1e-5)
    # RGB, per channel averaged, on a crop of another real image
    sr, hr = bicubic_pair(set14_dir / "baboon.png", 4)
    sr, hr = sr[:120, :100].astype(np.float64), hr[:120, :100].astype(np.float64)
    ours = metrics.ssim(_t(sr), _t(hr), data_range=255).item()
    assert ours == pytest.approx(structural_similarity(sr, hr, channel_axis=2, **kwargs), abs=1e-5)


def test_ssim_zero_padding_equals_scipy_convolution(set5_dir):
    """padding='zero' (the paper's reference code) = the 11x11 Gaussian applied with zeros outside."""
    sr, hr = bicubic_pair(set5_dir / "head.png", 4)
    x, y = sr[:64, :80, 1] / 255.0, hr[:64, :80, 1] / 255.0
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    win = np.outer(g, g) / np.outer(g, g).sum()

    def blur(a):
        return ndimage.correlate(a, win, mode="constant", cval=0.0)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    ref = (((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean()
    assert metrics.ssim(_t(x), _t(y), padding="zero").item() == pytest.approx(ref, abs=1e-10)


def test_ssim_hand_computed_constants():
    """Two constant images a, b: sigma = 0, so SSIM = l = (2ab + C1) / (a^2 + b^2 + C1) (eqs. 10, 13)."""
    a, b = 0.2, 0.4
    expected = (2 * a * b + 0.01**2) / (a * a + b * b + 0.01**2)
    x = torch.full((1, 1, 16, 16), a, dtype=torch.float64)
    y = torch.full((1, 1, 16, 16), b, dtype=torch.float64)
    assert metrics.ssim(x, y).item() == pytest.approx(expected, abs=1e-12)
    assert metrics.global_ssim(x, y).item() == pytest.approx(expected, abs=1e-12)
    assert metrics.ssim(y, y).item() == pytest.approx(1.0, abs=1e-12)
    assert metrics.ssim(y, y, padding="zero").item() == pytest.approx(1.0, abs=1e-12)


def test_global_ssim_is_eq13_on_whole_images():
    rng = np.random.default_rng(0)
    x, y = rng.random((20, 30)), rng.random((20, 30))
    c1, c2 = 0.01**2, 0.03**2
    cov = ((x - x.mean()) * (y - y.mean())).mean()
    ref = ((2 * x.mean() * y.mean() + c1) * (2 * cov + c2)) / ((x.mean() ** 2 + y.mean() ** 2 + c1)
                                                               * (x.var() + y.var() + c2))
    assert metrics.global_ssim(_t(x), _t(y)).item() == pytest.approx(ref, abs=1e-12)


@pytest.mark.equality
def test_metrics_are_batched_and_shape_checked():
    x = torch.rand(3, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    y = (x + 0.05 * torch.rand(3, 3, 20, 20, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    batch = metrics.ssim(x, y)
    single = torch.cat([metrics.ssim(x[i : i + 1], y[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, single)
    with pytest.raises(ValueError, match="same shape"):
        metrics.psnr(x, y[:, :, :10])
    with pytest.raises(ValueError, match="padding"):
        metrics.ssim(x, y, padding="reflect")
