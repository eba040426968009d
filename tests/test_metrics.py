"""PSNR and SSIM against scikit-image, SciPy and hand-computed values; the two protocols on Set5.

The metrics are :mod:`srgan_lib.metrics`, the protocols :mod:`srgan_lib.protocols`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import benchmark_path
from PIL import Image
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srgan_lib import images, metrics, protocols, resize


def _t(arr) -> torch.Tensor:
    """H x W (x C) array -> 1 x C x H x W float64 tensor (values unchanged)."""
    arr = np.asarray(arr, dtype=np.float64)
    arr = arr[..., None] if arr.ndim == 2 else arr
    return torch.from_numpy(arr).permute(2, 0, 1)[None].contiguous()


def _bicubic_pair(path, scale=2):
    hr = images.mod_crop(images.load_image(path), scale)
    return resize.imresize(resize.imresize(hr, 1 / scale), scale), hr


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
    sr, hr = _bicubic_pair(set5_dir / "bird.png")
    for crop in (0, 2):
        ours = metrics.psnr(_t(sr), _t(hr), data_range=255, crop_border=crop).item()
        s = slice(crop, -crop) if crop else slice(None)
        ref = peak_signal_noise_ratio(hr[s, s], sr[s, s], data_range=255)
        assert ours == pytest.approx(ref, abs=1e-10)


# ----------------------------------------------------------------------------- SSIM


def test_ssim_equals_skimage_on_real_images(set5_dir, set14_dir):
    kwargs = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    sr, hr = _bicubic_pair(set5_dir / "butterfly.png")
    y_sr, y_hr = images.rgb_to_y(sr).astype(np.float64), images.rgb_to_y(hr).astype(np.float64)
    ours = metrics.ssim(_t(y_sr), _t(y_hr), data_range=255).item()
    assert ours == pytest.approx(structural_similarity(y_sr, y_hr, **kwargs), abs=1e-5)
    # RGB, per channel averaged, on a crop of another real image
    sr, hr = _bicubic_pair(set14_dir / "baboon.png", 4)
    sr, hr = sr[:120, :100].astype(np.float64), hr[:120, :100].astype(np.float64)
    ours = metrics.ssim(_t(sr), _t(hr), data_range=255).item()
    assert ours == pytest.approx(structural_similarity(sr, hr, channel_axis=2, **kwargs), abs=1e-5)


def test_ssim_zero_padding_equals_scipy_convolution(set5_dir):
    """padding='zero' (the paper's reference code) = the 11x11 Gaussian applied with zeros outside."""
    sr, hr = _bicubic_pair(set5_dir / "head.png", 4)
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


# ----------------------------------------------------------------------------- protocols


def test_paper_crop_matches_torchvision_center_crop():
    from torchvision.transforms import CenterCrop

    img = np.random.default_rng(1).integers(0, 256, size=(37, 50, 3), dtype=np.uint8)
    for scale in (2, 4):
        side = 37 - 37 % scale
        ref = np.asarray(CenterCrop(side)(Image.fromarray(img)))
        np.testing.assert_array_equal(protocols.paper_crop(img, scale), ref)


def _set5_scores(folder, scale, protocol):
    rows = []
    for path in images.list_images(folder):
        hr, lr = protocols.make_pair(images.load_image(path), scale, protocol)
        sr = resize.imresize(lr, size=hr.shape[:2], method=protocols.PROTOCOL_RESIZE[protocol])
        rows.append(protocols.score_image(sr, hr, scale, protocol))
    return protocols.aggregate(rows, protocol, scale)


@pytest.fixture(scope="module")
def set5_results():
    folder = benchmark_path("Set5", "HR")
    return {(s, p): _set5_scores(folder, s, p) for s in (2, 4) for p in protocols.PROTOCOLS}


@pytest.mark.equality
@pytest.mark.parametrize("scale, psnr, ssim", [(2, 33.66, 0.9299), (4, 28.42, 0.8104)])
def test_set5_standard_bicubic_reproduces_published_numbers(set5_results, scale, psnr, ssim):
    ours_psnr, ours_ssim = set5_results[(scale, "standard")]["psnr"], set5_results[(scale, "standard")]["ssim"]
    assert abs(ours_psnr - psnr) <= 0.02, ours_psnr
    assert abs(ours_ssim - ssim) <= 0.001, ours_ssim


@pytest.mark.parametrize("scale", [2, 4])
def test_paper_protocol_is_more_than_2db_below_standard(set5_results, scale):
    assert set5_results[(scale, "standard")]["psnr"] - set5_results[(scale, "paper")]["psnr"] > 2.0


def test_paper_protocol_psnr_is_that_of_the_mean_mse():
    rows = [{"mse": 0.01, "psnr": 20.0, "ssim": 0.5}, {"mse": 0.0001, "psnr": 40.0, "ssim": 0.7}]
    paper = protocols.aggregate(rows, "paper", 2)
    assert paper["psnr"] == pytest.approx(10 * np.log10(1 / 0.00505))  # not the mean of 20 and 40 dB
    assert paper["ssim"] == pytest.approx(0.6)
    assert protocols.aggregate(rows, "standard", 2) == pytest.approx({"psnr": 30.0, "ssim": 0.6})
    assert all(np.isnan(v) for v in protocols.aggregate([], "paper", 2).values())


def test_protocols_set_the_scoring():
    """What each protocol hands the metric functions (module docstring of srgan_lib.protocols)."""
    assert protocols.scoring("standard", 4) == metrics.Scoring(data_range=255.0, crop_border=4, ssim_padding="valid",
                                                              pooled=False)
    assert protocols.scoring("paper", 4) == metrics.Scoring(data_range=1.0, crop_border=0, ssim_padding="zero",
                                                           pooled=True)


def test_standard_scores_uint8_y_with_border_removed(set5_dir):
    sr, hr = _bicubic_pair(set5_dir / "woman.png", 2)
    got = protocols.score_image(sr, hr, 2, "standard")
    y_sr, y_hr = images.rgb_to_y(sr)[2:-2, 2:-2], images.rgb_to_y(hr)[2:-2, 2:-2]
    assert got["psnr"] == pytest.approx(peak_signal_noise_ratio(y_hr, y_sr, data_range=255), abs=1e-10)
    ref = structural_similarity(y_sr.astype(float), y_hr.astype(float), gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=255)
    assert got["ssim"] == pytest.approx(ref, abs=1e-5)
    # a single-channel image is scored on its own intensities, not on 16 + 219/255 * v
    gray = protocols.score_image(sr, hr, 2, "standard", single_channel=True)
    ref = peak_signal_noise_ratio(hr[2:-2, 2:-2, 0], sr[2:-2, 2:-2, 0], data_range=255)
    assert gray["psnr"] == pytest.approx(ref, abs=1e-10)


def _devices():
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", _devices())
def test_tensor_luma_is_rgb_to_y_exactly(device):
    rgb = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    rgb[0, :4] = [[0, 0, 0], [255, 255, 255], [1, 2, 3], [128, 64, 32]]
    got = protocols._luma_tensor(torch.from_numpy(rgb).permute(2, 0, 1)[None].to(device))
    np.testing.assert_array_equal(got[0, 0].cpu().numpy(), images.rgb_to_y(rgb).astype(np.float64))


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("protocol", protocols.PROTOCOLS)
@pytest.mark.parametrize("single_channel", [False, True])
def test_a_tensor_scores_as_its_uint8_image(set5_dir, device, protocol, single_channel):
    sr, hr = _bicubic_pair(set5_dir / "bird.png", 2)
    noisy = torch.from_numpy(sr).permute(2, 0, 1)[None].double().div(255) + 0.002 * torch.randn(1, 3, *sr.shape[:2])
    sr_t = noisy.float().clamp(0, 1)
    ref = protocols.reference(hr, protocol, single_channel, device)
    got = protocols.score_image(sr_t, hr, 2, protocol, single_channel, device=device, ref=ref)
    if protocol == "standard":  # the tensor is rounded to uint8 first: the same as scoring to_uint8's image
        want = protocols.score_image(images.to_uint8(sr_t)[0], hr, 2, protocol, single_channel, device=device)
        assert got == want  # on one device (SSIM's convolution on a GPU differs from a CPU's in the last bit)
    else:
        assert got == pytest.approx(protocols.score_image(sr_t, hr, 2, protocol, single_channel), rel=1e-12)


def test_unknown_protocol_is_a_config_error():
    from srgan_lib.errors import ConfigError

    with pytest.raises(ConfigError, match="protocol"):
        protocols.make_pair(np.zeros((8, 8, 3), np.uint8), 2, "matlab")
