"""The two evaluation protocols: pairs, references, per-image scores and set values, on Set5 and by hand.

The protocols are :mod:`srgan_lib.protocols`; the metrics they use are tested in ``test_metrics.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import benchmark_path, bicubic_pair
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srgan_lib import images, metrics, protocols, resize


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
    rows = [{"mse": 0.01, "psnr": 20.0, "ssim": 0.5, "texture": 0.2, "artifact": 1.0},
            {"mse": 0.0001, "psnr": 40.0, "ssim": 0.7, "texture": 0.4, "artifact": 3.0}]
    paper = protocols.aggregate(rows, "paper", 2)
    assert paper["psnr"] == pytest.approx(10 * np.log10(1 / 0.00505))  # not the mean of 20 and 40 dB
    assert paper["ssim"] == pytest.approx(0.6)
    assert protocols.aggregate(rows, "standard", 2) == pytest.approx(
        {"psnr": 30.0, "ssim": 0.6, "texture": 0.3, "artifact": 2.0})  # every other metric: the mean
    assert all(np.isnan(v) for v in protocols.aggregate([], "paper", 2).values())


def test_protocols_set_the_scoring():
    """What each protocol hands the metric functions (module docstring of srgan_lib.protocols)."""
    assert protocols.scoring("standard", 4) == metrics.Scoring(data_range=255.0, crop_border=4, ssim_padding="valid",
                                                              pooled=False)
    assert protocols.scoring("paper", 4) == metrics.Scoring(data_range=1.0, crop_border=0, ssim_padding="zero",
                                                           pooled=True)


def test_standard_scores_uint8_y_with_border_removed(set5_dir):
    sr, hr = bicubic_pair(set5_dir / "woman.png", 2)
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
    sr, hr = bicubic_pair(set5_dir / "bird.png", 2)
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
