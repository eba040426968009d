"""The evaluation protocols: how an HR image becomes the pair that is scored, and how.

``notebooks/01_bicubic_baseline.ipynb`` measures how far the two are apart.

``PROTOCOLS``:

* ``"standard"`` -- the field's benchmark protocol (BasicSR, the published
  Set5 baselines): HR cropped to a multiple of the scale, LR by MATLAB bicubic,
  the metrics on the Y channel of MATLAB's ``rgb2ycbcr`` (uint8), ``scale`` pixels of
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

Which numbers are computed is the metric registry's business
(:data:`srgan_lib.metrics.METRICS`): :func:`score_image` returns every one of them.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import ConfigError, DataError
from .images import luma, mod_crop, rgb_to_y
from .metrics import Scoring, score_pair, set_values
from .resize import imresize

PROTOCOLS = ("standard", "paper")
#: The resize method each protocol makes its LR (and bicubic) images with.
PROTOCOL_RESIZE = {"standard": "matlab", "paper": "pil"}
#: One sentence per protocol, for the footnotes of the tables.
PROTOCOL_TEXT = {
    "standard": "Y channel (BT.601), `scale` pixels of border removed, LR by MATLAB-compatible bicubic, "
                "mean of per-image PSNR/SSIM (valid-window SSIM)",
    "paper": "RGB in [0, 1], HR centre-cropped to a square, LR and bicubic by PIL, no border removed, "
             "PSNR of the set's mean MSE, zero-padded SSIM: the protocol the paper's numbers appear to use",
}


def check_protocol(protocol: str) -> str:
    """``protocol`` if it is one of ``PROTOCOLS``, else a :class:`ConfigError` naming them."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol={protocol!r}: use one of {PROTOCOLS}")
    return protocol


def scoring(protocol: str, scale: int) -> Scoring:
    """The :class:`~srgan_lib.metrics.Scoring` of ``protocol`` at ``scale``.

    ``standard``: luma on the 0-255 scale, ``scale`` pixels of border removed,
    valid-window SSIM, means over images. ``paper``: RGB in ``[0, 1]``, no border,
    zero-padded SSIM, the set's PSNR from its mean MSE.
    """
    check_protocol(protocol)
    if protocol == "standard":
        return Scoring(data_range=255.0, crop_border=scale, ssim_padding="valid", pooled=False)
    return Scoring(data_range=1.0, crop_border=0, ssim_padding="zero", pooled=True)


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
                device="cpu", ref: torch.Tensor | None = None) -> dict[str, float]:
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
        dict: ``mse`` (on the protocol's scale) and one float per metric of
        :data:`srgan_lib.metrics.METRICS` (``psnr``, ``ssim``, ...).
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
    elif isinstance(sr, np.ndarray):
        a = torch.from_numpy(sr.astype(np.float64) / 255.0).permute(2, 0, 1)[None].to(device)
    else:
        a = sr.detach().to(device=device, dtype=torch.float64).clamp(0, 1)
    return score_pair(a, b, scoring(protocol, scale))


def aggregate(per_image: list[dict], protocol: str, scale: int) -> dict[str, float]:
    """A set's value of every metric, ``{name: value}``, from the rows of :func:`score_image`.

    Each metric aggregates as its registry entry says: under ``standard`` every
    one is the mean of its per-image values; under ``paper`` the PSNR is that of
    the mean MSE (peak 1), as the reference code did. NaN for an empty set.

    Args:
        per_image: dicts from :func:`score_image` (with ``mse``), scored with the same ``protocol`` and ``scale``.
    """
    return set_values(per_image, scoring(protocol, scale))
