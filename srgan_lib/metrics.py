"""The image-quality metrics (PSNR, SSIM, texture, artifacts) and their registry ``METRICS``.

``notebooks/01_bicubic_baseline.ipynb`` derives both metrics from the paper's
eqs. (9)-(14); :mod:`srgan_lib.protocols` decides how an HR image becomes the pair
that is scored and with which :class:`Scoring`.

Metrics (batched in torch, CPU or GPU; pass float64 tensors for evaluation):

* :func:`psnr` -- eq. (9): ``10 log10(MAX^2 / MSE)`` per image.
* :func:`ssim` -- Wang et al. 2004: eq. (13) computed in every 11 x 11 Gaussian
  window (sigma 1.5) with ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` (eq. 14), then
  averaged over the map (the "mean SSIM" everyone reports; applied once to the
  whole image, eq. (13) is a different, global number). ``padding="valid"`` keeps
  only windows inside the image (MATLAB's ``ssim_index``, scikit-image);
  ``padding="zero"`` zero-pads so that borders count (the paper's reference code).

What the adversary changes, weight-free, from the luma's power spectrum (:mod:`srgan_lib.spectra`):
``texture`` (:func:`~srgan_lib.spectra.texture_ratio`: 1 = as much fine detail as HR, < 1 blur) and
``artifact`` (:func:`~srgan_lib.spectra.artifact_score`: 1 = as clean as HR, large = stripes).

The registry ``METRICS`` (``{name: Metric}``) is the one list of what is
reported: :func:`srgan_lib.protocols.score_image` computes every entry per image,
:mod:`srgan_lib.evaluate` stores them, and ``runlog``, ``tables`` and ``ablation``
take their columns from it. To add a metric, write ``def my_metric(sr, hr, scoring)
-> float`` and add one :class:`Metric` entry (``tests/test_metrics_registry.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .errors import DataError
from .spectra import artifact_score, texture_ratio


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


# ----------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Scoring:
    """What a protocol fixes for scoring one pair (see :func:`srgan_lib.protocols.scoring`).

    Attributes:
        data_range: MAX of eq. (9) and L of eq. (14): 255 for the ``standard`` luma, 1 for ``paper``'s RGB.
        crop_border: pixels removed from every side before scoring.
        ssim_padding: ``"valid"`` or ``"zero"`` (see :func:`ssim`).
        pooled: a set's PSNR is that of its mean MSE (the paper's reference code),
            not the mean of the per-image PSNRs.
    """

    data_range: float = 1.0
    crop_border: int = 0
    ssim_padding: str = "valid"
    pooled: bool = False


def image_psnr(sr, hr, scoring: Scoring) -> float:
    """PSNR in dB (eq. 9) of one pair: ``1 x C x H x W`` float64 in ``[0, scoring.data_range]``."""
    return float(psnr_from_mse(mse(sr, hr, scoring.crop_border), scoring.data_range)[0])


def image_ssim(sr, hr, scoring: Scoring) -> float:
    """Mean SSIM (eqs. 10-14) of one pair: ``1 x C x H x W`` float64 in ``[0, scoring.data_range]``."""
    return float(ssim(sr, hr, data_range=scoring.data_range, crop_border=scoring.crop_border,
                      padding=scoring.ssim_padding)[0])


def image_texture(sr, hr, scoring: Scoring) -> float:
    """Texture ratio of one pair (:func:`srgan_lib.spectra.texture_ratio`), border removed first.

    Args:
        sr, hr: ``1 x 1 x H x W`` luma (any scale: a ratio) or ``1 x 3 x H x W`` RGB in ``[0, 1]``, float64.
    """
    return texture_ratio(_crop(sr, scoring.crop_border), _crop(hr, scoring.crop_border))


def image_artifact(sr, hr, scoring: Scoring) -> float:
    """Periodic-artifact score of one pair (:func:`srgan_lib.spectra.artifact_score`), border removed first.

    Args:
        sr, hr: ``1 x 1 x H x W`` luma (any scale: a ratio) or ``1 x 3 x H x W`` RGB in ``[0, 1]``, float64.
    """
    return artifact_score(_crop(sr, scoring.crop_border), _crop(hr, scoring.crop_border))


def mean_over_images(name: str, per_image: list[dict], scoring: Scoring) -> float:
    """A set's value: the mean of the per-image values ``row[name]``."""
    return float(np.mean([row[name] for row in per_image]))


def psnr_over_images(name: str, per_image: list[dict], scoring: Scoring) -> float:
    """A set's PSNR: the PSNR of the mean MSE when ``scoring.pooled``, else the mean of per-image PSNRs."""
    if scoring.pooled:
        return float(psnr_from_mse(np.mean([row["mse"] for row in per_image]), scoring.data_range))
    return mean_over_images(name, per_image, scoring)


@dataclass(frozen=True)
class Metric:
    """One entry of :data:`METRICS`.

    Attributes:
        fn: ``fn(sr, hr, scoring) -> float`` on one prepared pair (``1 x C x H x W``
            float64 in ``[0, scoring.data_range]``, as :func:`srgan_lib.protocols.score_image` makes them).
        label: the column label (``"PSNR"``).
        digits: decimals shown in the tables.
        unit: the unit after a value (``"dB"``), or ``""``.
        over_images: ``(name, per_image rows, scoring) -> float``, the set's value
            from the per-image rows (default: their mean).
    """

    fn: Callable[..., float]
    label: str
    digits: int
    unit: str = ""
    over_images: Callable[[str, list, Scoring], float] = mean_over_images

    @property
    def suffix(self) -> str:
        """What follows a value in a sentence: ``" dB"``, or ``""`` for a unitless metric."""
        return f" {self.unit}" if self.unit else ""


#: The metrics reported everywhere (tables, CSV files, validation logs), in column order.
METRICS: dict[str, Metric] = {
    "psnr": Metric(image_psnr, "PSNR", digits=2, unit="dB", over_images=psnr_over_images),
    "ssim": Metric(image_ssim, "SSIM", digits=4),
    "texture": Metric(image_texture, "Texture", digits=3),
    "artifact": Metric(image_artifact, "Artifacts", digits=2),
}


def score_pair(sr, hr, scoring: Scoring) -> dict[str, float]:
    """Every metric of one prepared pair: ``{"mse": ..., name: value for each of METRICS}``.

    ``mse`` (on the ``data_range`` scale, border removed) is kept with each image
    for :func:`psnr_over_images`.

    Args:
        sr, hr: ``1 x C x H x W`` float64 tensors in ``[0, scoring.data_range]``.
    """
    row = {"mse": float(mse(sr, hr, scoring.crop_border)[0])}
    row.update({name: metric.fn(sr, hr, scoring) for name, metric in METRICS.items()})
    return row


def set_values(per_image: list[dict], scoring: Scoring) -> dict[str, float]:
    """A set's value of every metric (``{name: value}``) from the rows of :func:`score_pair`; NaN for no image."""
    if not per_image:
        return {name: math.nan for name in METRICS}
    return {name: metric.over_images(name, per_image, scoring) for name, metric in METRICS.items()}

