"""PSNR and SSIM, and the two evaluation protocols used to report them.

``notebooks/01_bicubic_baseline.ipynb`` derives both metrics from the paper's
eqs. (9)-(14) and measures how far the two protocols below are apart.

Metrics (batched in torch, CPU or GPU; pass float64 tensors for evaluation):

* :func:`psnr` -- eq. (9): ``10 log10(MAX^2 / MSE)`` per image.
* :func:`ssim` -- Wang et al. 2004: eq. (13) computed in every 11 x 11 Gaussian
  window (sigma 1.5) with ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` (eq. 14), then
  averaged over the map (the "mean SSIM" everyone reports; applied once to the
  whole image, eq. (13) is a different, global number). ``padding="valid"`` keeps
  only windows inside the image (MATLAB's ``ssim_index``, scikit-image);
  ``padding="zero"`` zero-pads so that borders count (the paper's reference code).

Protocols (``PROTOCOLS``), i.e. how an HR image becomes the pair that is scored:

* ``"standard"`` -- the field's benchmark protocol (BasicSR, the published
  Set5 baselines): HR cropped to a multiple of the scale, LR by MATLAB bicubic,
  PSNR/SSIM on the Y channel of MATLAB's ``rgb2ycbcr`` (uint8), ``scale`` pixels of
  border removed, valid-region SSIM, the mean over images of per-image values. A
  single-channel image file is scored on its own intensities.
* ``"paper"`` -- what the paper's Tables 1-2 appear to use (the validation code
  of leftthomas/SRGAN it was built on, see ``docs/references.md``): HR
  centre-cropped to the largest square divisible by the scale, LR and the bicubic
  restore by PIL bicubic, RGB in ``[0, 1]``, no border removed, PSNR from the mean
  MSE over the whole set (not a mean of per-image PSNRs; peak 1, where the
  reference code took the last HR image's maximum, which is ~1), SSIM zero-padded
  per channel and averaged over images. On Set5 it scores bicubic 3.05 dB (x2)
  and 2.94 dB (x4) lower than ``standard`` (``tests/test_metrics.py`` checks > 2 dB);
  the gap depends on the images (on DIV2K's 0004 alone, ``paper`` is 1.2 dB higher).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError, DataError
from .images import luma, mod_crop, rgb_to_y
from .resize import imresize

PROTOCOLS = ("standard", "paper")
#: The resize method each protocol makes its LR (and bicubic) images with.
PROTOCOL_RESIZE = {"standard": "matlab", "paper": "pil"}


def _crop(x, border: int):
    return x[..., border:-border, border:-border] if border > 0 else x


def _float_dtype(t):
    """The dtype to compute in: the tensor's own if float, else float32."""
    return t.dtype if t.is_floating_point() else torch.float32


def _check_pair(sr, hr):
    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}")
    if sr.ndim != 4:
        raise ValueError(f"expected N x C x H x W tensors, got shape {tuple(sr.shape)}")


def mse(sr, hr, crop_border: int = 0):
    """Mean squared error per image.

    Args:
        sr, hr: ``N x C x H x W`` tensors on the same scale (e.g. ``[0, 1]``).
        crop_border: pixels removed from every side first.

    Returns:
        Tensor: ``N`` values, in the input's float dtype (at least float32).
    """
    _check_pair(sr, hr)
    dtype = _float_dtype(hr)
    diff = _crop(sr, crop_border).to(dtype) - _crop(hr, crop_border).to(dtype)
    return diff.pow(2).flatten(1).mean(dim=1)


def psnr_from_mse(mse_value, data_range: float = 1.0):
    """Eq. (9): ``10 log10(MAX^2 / MSE)``; ``inf`` where the MSE is 0."""
    mse_value = torch.as_tensor(mse_value).double()
    return 10.0 * torch.log10(data_range**2 / mse_value)


def psnr(sr, hr, data_range: float = 1.0, crop_border: int = 0):
    """Peak signal-to-noise ratio per image, eq. (9).

    Args:
        sr, hr: ``N x C x H x W`` tensors with values in ``[0, data_range]``.
        data_range: MAX in eq. (9): 1.0 for ``[0, 1]`` images, 255 for uint8 scale.
        crop_border: pixels removed from every side before scoring.

    Returns:
        Tensor: ``N`` PSNR values in dB (``inf`` for identical images).
    """
    value = mse(sr, hr, crop_border)
    return psnr_from_mse(value, data_range).to(value.dtype)


def _filter1d(x, taps: list[float], dim: int):
    """Valid 1-d correlation of ``N x C x H x W`` along ``dim`` (2 or 3) by shifted adds."""
    n = x.shape[dim] - len(taps) + 1
    out = x.narrow(dim, 0, n) * taps[0]
    for k in range(1, len(taps)):
        out.add_(x.narrow(dim, k, n), alpha=taps[k])
    return out


def gaussian_1d(size: int = 11, sigma: float = 1.5):
    """The normalised 1-d Gaussian of SSIM's window: ``size`` float64 values summing to 1."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def gaussian_window(size: int = 11, sigma: float = 1.5):
    """The 2-d Gaussian window of SSIM (Wang et al. 2004): ``size x size`` float64, sum 1."""
    g = gaussian_1d(size, sigma)
    return torch.outer(g, g)


def ssim(sr, hr, data_range: float = 1.0, crop_border: int = 0, padding: str = "valid",
         window_size: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03):
    """Mean structural similarity per image (Wang et al. 2004), eqs. (10)-(14) per window.

    Local means, variances and the covariance are Gaussian-weighted averages
    (population form, ``E[x^2] - E[x]^2``) in every ``window_size`` window; eq. (13)
    is evaluated per window and the map is averaged over pixels and channels.

    Args:
        sr, hr: ``N x C x H x W`` tensors with values in ``[0, data_range]``.
        data_range: L in eq. (14).
        crop_border: pixels removed from every side first.
        padding: ``"valid"`` (windows fully inside the image; MATLAB, scikit-image)
            or ``"zero"`` (zero-padded, borders included; the paper's reference code).

    Returns:
        Tensor: ``N`` SSIM values (1 for identical images).

    Raises:
        DataError: with ``padding="valid"``, an image smaller than the window once cropped.
    """
    _check_pair(sr, hr)
    if padding not in ("valid", "zero"):
        raise ValueError(f"padding={padding!r}: use 'valid' or 'zero'")
    dtype = _float_dtype(hr)
    x, y = _crop(sr, crop_border).to(dtype), _crop(hr, crop_border).to(dtype)
    if padding == "valid" and min(x.shape[-2:]) < window_size:
        raise DataError(f"SSIM needs at least {window_size} x {window_size} pixels after removing {crop_border} "
                        f"of border, got {tuple(x.shape[-2:])}: use a larger image (or max_side)")
    channels = x.shape[1]
    # The Gaussian window is separable: two 1-d passes of shifted adds cost 2 x 11
    # instead of 121 multiply-adds per pixel (and beat conv2d in float64 on a CPU).
    g = gaussian_1d(window_size, sigma).tolist()
    stats = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # all five moments in one pass
    if padding == "zero":
        stats = F.pad(stats, [window_size // 2] * 4)
    stats = _filter1d(_filter1d(stats, g, dim=2), g, dim=3)
    mu_x, mu_y, e_xx, e_yy, e_xy = stats.split(channels, dim=1)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2  # eq. (14)
    var_x = e_xx - mu_x**2
    var_y = e_yy - mu_y**2
    cov = e_xy - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(dim=1)


def global_ssim(sr, hr, data_range: float = 1.0):
    """Eq. (13) applied ONCE to whole images (one mean, one variance per image).

    Not what benchmarks report: shown in notebook 01 to explain why the windowed
    :func:`ssim` differs.

    Args:
        sr, hr: ``N x C x H x W`` tensors with values in ``[0, data_range]``.

    Returns:
        Tensor: ``N`` float64 values (channels averaged).
    """
    x, y = sr.double().flatten(2), hr.double().flatten(2)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = x.mean(-1), y.mean(-1)
    var_x, var_y = x.var(-1, unbiased=False), y.var(-1, unbiased=False)
    cov = ((x - mu_x[..., None]) * (y - mu_y[..., None])).mean(-1)
    value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return value.mean(dim=1)


# ----------------------------------------------------------------------------- protocols


def check_protocol(protocol: str) -> str:
    """``protocol`` if it is one of ``PROTOCOLS``, else a :class:`ConfigError` naming them."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol={protocol!r}: use one of {PROTOCOLS}")
    return protocol


def paper_crop(hr: np.ndarray, scale: int) -> np.ndarray:
    """Centre crop to the largest square divisible by ``scale`` (the paper protocol).

    Offsets are rounded like torchvision's ``CenterCrop`` (Python ``round``), which
    the reference code used, so that the same pixels are kept.
    """
    h, w = hr.shape[:2]
    side = min(h, w) - min(h, w) % scale
    top, left = int(round((h - side) / 2.0)), int(round((w - side) / 2.0))
    return hr[top : top + side, left : left + side]


def make_pair(hr: np.ndarray, scale: int, protocol: str = "standard", resize_method: str | None = None,
              device=None):
    """The scored HR image and its LR input under ``protocol``.

    Args:
        hr: ``H x W x 3`` uint8 RGB.
        scale: 2, 4, ...
        protocol: ``"standard"`` (mod-crop) or ``"paper"`` (square centre crop).
        resize_method: how LR is made; ``None`` = the protocol's own
            (``PROTOCOL_RESIZE``: MATLAB bicubic for standard, PIL for paper).
        device: where the resize arithmetic runs (same result; see :func:`imresize`).

    Returns:
        (hr, lr): uint8 ``H' x W' x 3`` and ``H'/scale x W'/scale x 3``.
    """
    check_protocol(protocol)
    method = resize_method or PROTOCOL_RESIZE[protocol]
    hr = paper_crop(hr, scale) if protocol == "paper" else mod_crop(hr, scale)
    if min(hr.shape[:2]) < scale:
        raise DataError(f"image of {hr.shape[1]}x{hr.shape[0]} pixels is smaller than scale {scale}")
    h, w = hr.shape[:2]
    return hr, imresize(hr, size=(h // scale, w // scale), method=method, device=device)


def _luma_tensor(rgb_u8: torch.Tensor) -> torch.Tensor:
    """:func:`srgan_lib.images.rgb_to_y` on a tensor: ``1 x 3 x H x W`` integer values -> ``1 x 1 x H x W`` float64.

    The same float64 operations (:func:`srgan_lib.images.luma`), so the same
    rounded luma on any device; ``tests/test_metrics.py`` checks it against the NumPy original.
    """
    rgb = rgb_u8.to(torch.float64)
    return torch.clamp(torch.round(luma(rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3])), 0, 255)


def reference(hr: np.ndarray, protocol: str = "standard", single_channel: bool = False, device="cpu"):
    """The HR side of :func:`score_image`, made once when several methods are scored against one image.

    Returns:
        Tensor: float64 on ``device``: ``1 x 1 x H x W`` luma in ``[0, 255]``
        (``standard``) or ``1 x 3 x H x W`` RGB in ``[0, 1]`` (``paper``).
    """
    check_protocol(protocol)
    if protocol == "standard":
        hr_c = hr[..., 0] if single_channel else rgb_to_y(hr)
        return torch.from_numpy(hr_c.astype(np.float64))[None, None].to(device)
    return torch.from_numpy(hr.astype(np.float64) / 255.0).permute(2, 0, 1)[None].to(device)


def score_image(sr, hr: np.ndarray, scale: int, protocol: str = "standard", single_channel: bool = False,
                device="cpu", ref: torch.Tensor | None = None):
    """Score one restored image against its HR image under ``protocol``.

    Args:
        sr: the restored image: ``H x W x 3`` uint8, or a tensor ``1 x 3 x H x W``
            float in ``[0, 1]`` (rounded to uint8 for ``standard``, on its way to
            ``device``, used as is for ``paper``, whose reference code did not
            round the network's output).
        hr: ``H x W x 3`` uint8 (as returned by :func:`make_pair`).
        single_channel: the HR file had one channel: ``standard`` scores its
            intensities (channel 0) instead of the Y channel.
        device: where the float64 arithmetic runs (a GPU makes 2K images fast;
            the numbers are the same).
        ref: ``reference(hr, protocol, single_channel, device)``, when already made.

    Returns:
        dict with ``mse`` (on the protocol's scale), ``psnr`` and ``ssim`` (floats).
    """
    check_protocol(protocol)
    b = reference(hr, protocol, single_channel, device) if ref is None else ref
    if protocol == "standard":
        if isinstance(sr, np.ndarray):
            sr_c = sr[..., 0] if single_channel else rgb_to_y(sr)
            a = torch.from_numpy(sr_c.astype(np.float64))[None, None].to(device)
        else:  # to_uint8's rounding, then rgb_to_y's luma, where the tensor is going
            u8 = sr.detach().to(device=device, dtype=torch.float32).mul(255.0).round_().clamp_(0, 255)
            a = u8[:, 0:1].double() if single_channel else _luma_tensor(u8)
        value_mse = mse(a, b, crop_border=scale)
        return {"mse": float(value_mse[0]), "psnr": float(psnr_from_mse(value_mse, 255.0)[0]),
                "ssim": float(ssim(a, b, data_range=255.0, crop_border=scale)[0])}
    if isinstance(sr, np.ndarray):
        a = torch.from_numpy(sr.astype(np.float64) / 255.0).permute(2, 0, 1)[None].to(device)
    else:
        a = sr.detach().to(device=device, dtype=torch.float64).clamp(0, 1)
    value_mse = mse(a, b)
    return {"mse": float(value_mse[0]), "psnr": float(psnr_from_mse(value_mse)[0]),
            "ssim": float(ssim(a, b, padding="zero")[0])}


def aggregate(per_image: list[dict], protocol: str) -> tuple[float, float]:
    """Dataset PSNR and SSIM from per-image scores under ``protocol``.

    ``standard`` averages per-image PSNRs; ``paper`` takes the PSNR of the mean
    MSE (peak 1), as the reference code did. SSIM is the mean over images in both.
    """
    check_protocol(protocol)
    if not per_image:
        return math.nan, math.nan
    ssim_mean = float(np.mean([r["ssim"] for r in per_image]))
    if protocol == "paper":
        return float(psnr_from_mse(np.mean([r["mse"] for r in per_image]))), ssim_mean
    return float(np.mean([r["psnr"] for r in per_image])), ssim_mean
