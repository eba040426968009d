"""Weight-free texture and periodic-artifact measures from the power spectrum of the luma.

PSNR rewards a blur (the perception-distortion trade-off, Blau and Michaeli 2018); the
adversary's texture shows up as power at high spatial frequencies, and so do its failures
(stripes and checkerboards at the sub-pixel upsampler's period). Both are read here from the
windowed power spectrum of the BT.601 luma, with no network weights.

The spectrum (:func:`power_spectrum`), for an image whose luma ``y`` (``0-255`` scale,
:func:`srgan_lib.images.luma`) is ``H x W``:

* ``w = hann(H) (x) hann(W)``, the periodic 2-D Hann window, against the leakage of the image's
  edges (the FFT sees the image as periodic: a jump at its border puts a cross of power on the axes);
* ``m = sum(w y) / sum(w)``, the window-weighted mean, removed so that the DC bin is exactly 0;
* ``P(k) = |FFT2(w (y - m))(k)|^2 / sum(w^2)``: white noise of variance ``s^2`` has ``E P = s^2``
  in every bin, and (Parseval) the mean of ``P`` over all ``H W`` bins is the window-weighted
  variance ``sum(w^2 (y - m)^2) / sum(w^2)``.

A bin's frequency ``(fy, fx)`` is in cycles per pixel (``-1/2 .. 1/2``), its radius ``rho``, its
*normalised* radius ``r = 2 rho`` (1 = Nyquist; the corners reach ``sqrt(2)``).

* :func:`radial_power_spectrum` -- ``P`` averaged in rings ``round(rho * min(H, W)) = k``,
  ``k = 1 .. min(H, W) // 2`` (one bin of the shorter axis wide), at ``r = 2 k / min(H, W)``;
  DC and the corners beyond Nyquist are left out.
* :func:`hf_energy` -- ``sum of P over bins with r >= cutoff, / (H W)``: the part of the
  windowed variance above ``cutoff`` x Nyquist, corners included (a checkerboard lives there).
* :func:`texture_ratio` -- ``hf_energy(sr) / hf_energy(hr)``: 1 = as much fine detail as HR,
  < 1 a blur, > 1 invented detail (noise or artifacts; :func:`artifact_score` tells which).
* :func:`artifact_score` -- how far the power at the sub-pixel grid's frequencies (periods 2
  and 4 pixels, :func:`grid_power`) stands above its frequency ring, SR's over HR's: 1 = as clean
  as HR, large = stripes or a checkerboard.
"""

from __future__ import annotations

import collections
import functools
import math

import numpy as np
import torch

from .errors import DataError
from .images import luma

#: The sub-pixel grid's frequencies (cycles per pixel, ``(fy, fx)``): periods 2 and 4 HR pixels along
#: each axis and their combinations, DC excluded, one of each pair ``f, -f`` (``P(f) = P(-f)`` for a real image).
GRID_FREQS = ((0.0, 0.5), (0.5, 0.0), (0.5, 0.5),
              (0.0, 0.25), (0.25, 0.0), (0.25, 0.25), (0.25, -0.25),
              (0.25, 0.5), (0.5, 0.25))
#: Bins on each side of a grid frequency that make its neighbourhood (3 x 3): an image whose side is
#: not a multiple of 4 puts the peak between two bins, and the Hann window spreads it over one more.
PEAK_REACH = 1
#: The fewest bins a ring holds: it is widened (in steps of one bin of the shorter axis) until it has
#: them, which matters near the corners, where the circle of radius ``rho`` barely enters the square.
RING_MIN = 64
#: The smallest side the grid frequencies are resolved on (period 4 needs at least two bins from DC).
MIN_SIDE = 8


def luma_of(img) -> torch.Tensor:
    """The BT.601 luma of one image, ``H x W`` float64 on the ``0-255`` scale.

    Args:
        img: a tensor ``1 x 3 x H x W`` or ``3 x H x W`` RGB in ``[0, 1]``; a tensor
            ``1 x 1 x H x W`` / ``H x W`` taken as the luma (or intensities) as is, on
            whatever scale it has (the metrics' ``standard`` Y channel is already ``0-255``);
            or an array ``H x W x 3`` uint8 RGB (``0-255``) / ``H x W``.

    Raises:
        ValueError: another shape. DataError: a side shorter than ``MIN_SIDE``.
    """
    if isinstance(img, np.ndarray):
        arr = img.astype(np.float64)
        if arr.ndim == 3 and arr.shape[-1] == 3:
            arr = luma(arr[..., 0], arr[..., 1], arr[..., 2])
        elif arr.ndim != 2:
            raise ValueError(f"expected an H x W x 3 or H x W array, got shape {arr.shape}")
        y = torch.from_numpy(np.ascontiguousarray(arr))
    else:
        t = img.detach().to(torch.float64)
        t = t[0] if t.ndim == 4 and t.shape[0] == 1 else t
        if t.ndim == 3 and t.shape[0] == 3:
            y = luma(t[0] * 255.0, t[1] * 255.0, t[2] * 255.0)
        elif t.ndim == 3 and t.shape[0] == 1:
            y = t[0]
        elif t.ndim == 2:
            y = t
        else:
            raise ValueError(f"expected 1 x 3 x H x W, 1 x 1 x H x W or H x W, got shape {tuple(img.shape)}")
    if min(y.shape) < MIN_SIDE:
        raise DataError(f"the spectrum needs at least {MIN_SIDE} x {MIN_SIDE} pixels, got {tuple(y.shape)}: "
                        "use a larger image (or crop less border)")
    return y


def power_spectrum(img) -> tuple[torch.Tensor, torch.Tensor]:
    """The windowed power spectrum ``P`` of the luma and each bin's radius (module docstring).

    Args:
        img: see :func:`luma_of` (e.g. ``1 x 3 x H x W`` in ``[0, 1]``).

    Returns:
        (power, rho): ``H x W`` float64 each, in FFT order (DC at ``[0, 0]``); ``power`` in
        luma units squared (``0-255`` scale), ``rho`` in cycles per pixel (``0 .. sqrt(2)/2``).
    """
    half, w = _half_power(img)
    h = half.shape[0]
    mirrored = torch.roll(half.flip(0), 1, 0)[:, 1 : w - w // 2].flip(1)  # P(-k) = P(k) for a real image
    return torch.cat([half, mirrored], dim=1), _radius(h, w, half.device)


#: The last spectra by input tensor: scoring takes both measures of one pair, and one HR image per method.
_RECENT: collections.OrderedDict = collections.OrderedDict()
_RECENT_SIZE = 8


def _half_power(img) -> tuple[torch.Tensor, int]:
    """``P`` for the columns ``0 .. W // 2`` (``rfft2``: a third of ``fft2``'s time), and ``W``; read-only.

    Cached by the tensor's address, layout and version counter (bumped by any in-place change); the entry
    holds the tensor, so its memory cannot pass to another tensor meanwhile: equal keys, equal pixels."""
    if not isinstance(img, torch.Tensor):
        return _compute_half_power(img)
    key = (img.data_ptr(), tuple(img.shape), img.stride(), img.dtype, str(img.device), img._version)
    if key in _RECENT:
        _RECENT.move_to_end(key)
        return _RECENT[key][1]
    out = _compute_half_power(img)
    _RECENT[key] = (img, out)
    while len(_RECENT) > _RECENT_SIZE:
        _RECENT.popitem(last=False)
    return out


def _compute_half_power(img) -> tuple[torch.Tensor, int]:
    y = luma_of(img)
    h, w = y.shape
    opts = {"dtype": torch.float64, "device": y.device}
    wy, wx = torch.hann_window(h, periodic=True, **opts), torch.hann_window(w, periodic=True, **opts)
    window = wy[:, None] * wx[None, :]
    mean = (window * y).sum() / window.sum()
    half = torch.fft.rfft2(window * (y - mean))
    return (half.real.square() + half.imag.square()) / (wy.square().sum() * wx.square().sum()), w


def _radius(h: int, w: int, device) -> torch.Tensor:
    """``rho`` of every FFT bin of an ``h x w`` image, cycles per pixel."""
    fy = torch.fft.fftfreq(h, dtype=torch.float64, device=device)
    fx = torch.fft.fftfreq(w, dtype=torch.float64, device=device)
    return torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def radial_power_spectrum(img) -> tuple[np.ndarray, np.ndarray]:
    """The radially averaged power spectrum of the luma, DC and corners left out.

    Args:
        img: see :func:`luma_of` (e.g. ``1 x 3 x H x W`` in ``[0, 1]`` or ``H x W x 3`` uint8).

    Returns:
        (freqs, power): float64 arrays of ``min(H, W) // 2`` values: the normalised frequency
        ``2 k / min(H, W)`` in ``(0, 1]`` (1 = Nyquist) and the mean of ``P`` over the bins with
        ``round(rho * min(H, W)) = k`` (luma units squared, 0-255 scale; ``s^2`` for white noise of variance ``s^2``).
    """
    power, rho = power_spectrum(img)
    m = min(power.shape)
    ring = torch.round(rho * m).long().flatten()
    n = m // 2
    keep = (ring >= 1) & (ring <= n)
    sums = torch.bincount(ring[keep], weights=power.flatten()[keep], minlength=n + 1)
    counts = torch.bincount(ring[keep], minlength=n + 1)
    k = np.arange(1, n + 1)
    return 2.0 * k / m, (sums[1:] / counts[1:]).cpu().numpy()


def hf_energy(img, cutoff: float = 0.5) -> float:
    """The windowed variance of the luma above ``cutoff`` x Nyquist: ``sum(P[r >= cutoff]) / (H W)``.

    ``img``: see :func:`luma_of` (e.g. ``1 x 3 x H x W`` in ``[0, 1]``); ``cutoff``: the normalised radius
    ``r = 2 rho`` where "high" starts (0: the whole windowed variance). Returns luma units squared (0-255).
    """
    half, w = _half_power(img)
    h = half.shape[0]
    fy = torch.fft.fftfreq(h, dtype=torch.float64, device=half.device)
    fx = torch.fft.rfftfreq(w, dtype=torch.float64, device=half.device)
    high = 2.0 * torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) >= cutoff
    # every column but DC's (and Nyquist's, for an even W) stands for itself and its mirror
    twice = torch.ones_like(fx)
    twice[1 : (w + 1) // 2] = 2.0
    return float((half * high * twice).sum() / (h * w))


def _ratio(a: float, b: float) -> float:
    """``a / b``, with equal values (0 included) giving exactly 1 and ``a > 0 = b`` giving ``inf``."""
    return 1.0 if a == b else a / b if b > 0 else math.inf


def texture_ratio(sr, hr, cutoff: float = 0.5) -> float:
    """``hf_energy(sr) / hf_energy(hr)``: 1 = as much fine detail as HR, < 1 blur, > 1 invented detail.

    Args:
        sr, hr: one image each, of one size (see :func:`luma_of`: ``1 x 3 x H x W`` in ``[0, 1]``, ...).
        cutoff: see :func:`hf_energy`.
    """
    return _ratio(hf_energy(sr, cutoff), hf_energy(hr, cutoff))


def _grid_index(f: float, n: int) -> int:
    return round(f * n) % n


@functools.lru_cache(maxsize=8)
def _grid_geometry(h: int, w: int) -> tuple[list, list]:
    """Where :func:`grid_power` reads an ``h x w`` spectrum: flat indices on the CPU, made once per size.

    Returns:
        (peaks, rings): per entry of :data:`GRID_FREQS`, the ``3 x 3`` neighbourhood's flat indices
        and its ring's flat indices (see :func:`grid_power`).
    """
    rho = _radius(h, w, "cpu")
    offsets = range(-PEAK_REACH, PEAK_REACH + 1)
    near = torch.zeros(h, w, dtype=torch.bool)
    peaks = []
    for fy, fx in GRID_FREQS:
        rows = [(_grid_index(fy, h) + d) % h for d in offsets]
        cols = [(_grid_index(fx, w) + d) % w for d in offsets]
        peaks.append(torch.tensor([r * w + c for r in rows for c in cols]))
        for sign in (1, -1):  # f and its mirror -f
            near[np.ix_([(sign * r) % h for r in rows], [(sign * c) % w for c in cols])] = True
    near[np.ix_([d % h for d in offsets], [d % w for d in offsets])] = True  # and DC's
    eligible = torch.nonzero(~near.flatten()).flatten()
    dist_of = {}
    rings = []
    for fy, fx in GRID_FREQS:
        radius = math.hypot(fy, fx)
        if radius not in dist_of:
            dist = (rho.flatten()[eligible] - radius).abs() * min(h, w)  # in bins of the shorter axis
            reach = max(1.0, float(torch.kthvalue(dist, min(RING_MIN, dist.numel())).values))
            dist_of[radius] = eligible[dist <= reach]
        rings.append(dist_of[radius])
    return peaks, rings


def grid_power(img) -> tuple[torch.Tensor, torch.Tensor]:
    """The peak power at each of :data:`GRID_FREQS`, and the background level of its ring.

    For a grid frequency ``f``: the peak is the max of ``P`` over the ``3 x 3`` bins around the bin
    nearest ``f`` (``PEAK_REACH``); the ring is the bins whose radius is within ``d`` of ``|f|``,
    the neighbourhoods of all grid frequencies (and DC) left out, ``d`` one bin of the shorter axis,
    or more until the ring holds ``RING_MIN`` bins; its level is their median (robust: a peak or a
    strong axis in the ring barely moves it).

    Args:
        img: see :func:`luma_of` (e.g. ``1 x 3 x H x W`` in ``[0, 1]``).

    Returns:
        (peak, ring): ``len(GRID_FREQS)`` float64 powers each, luma units squared (0-255 scale).
        For white noise ``peak / ring`` is about 3.5 (the max of nine exponential powers over their median).
    """
    power, _ = power_spectrum(img)
    peaks, rings = _grid_geometry(*power.shape)
    flat = power.flatten()
    peak = torch.stack([flat[idx.to(flat.device)].max() for idx in peaks])
    levels = {id(idx): torch.quantile(flat[idx.to(flat.device)], 0.5) for idx in rings}
    return peak, torch.stack([levels[id(idx)] for idx in rings])


def _prominence(peak: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """``peak / background``, 0 where both are 0 and ``inf`` where only the background is."""
    safe = torch.where(background > 0, background, torch.ones_like(background))
    out = torch.where(background > 0, peak / safe, torch.full_like(peak, math.inf))
    return torch.where(peak > 0, out, torch.zeros_like(out))


def artifact_score(sr, hr) -> float:
    """Periodic artifacts at the sub-pixel grid (periods 2 and 4): 1 = as clean as HR, large = stripes.

    With :func:`grid_power`'s peaks ``p`` and ring levels ``q`` at each grid frequency:

    ``max_f [ p_sr / max(q_sr, q_hr) ] / max_f [ p_hr / q_hr ]``

    SR's most prominent grid peak over HR's. The background is never below HR's: a blurred image
    has almost no power at high frequencies, and against that silence the faint period-4 residue of
    any interpolation (bicubic's too) would stand out, although it is far below the detail the real
    image has there. The max over the nine frequencies (not the mean) because an artifact sits at
    one or two of them (stripes at one, a checkerboard at another), which a mean would dilute up to
    nine-fold; both sides take the max over the same nine noisy values, so a clean image stays near
    or below 1 (Set5 and Set14 x4, median per image: bicubic 0.006; bicubic plus white noise up to HR's
    texture ratio 0.4; the same with stripes of amplitude 1/255 at period 2 added: about 100).

    Args:
        sr, hr: one image each, of one size (see :func:`luma_of`: ``1 x 3 x H x W`` in ``[0, 1]``, ...).

    Returns:
        float: ``>= 0``; exactly 1.0 when ``sr`` and ``hr`` are the same image.
    """
    peak_sr, ring_sr = grid_power(sr)
    peak_hr, ring_hr = grid_power(hr)
    sr_value = float(_prominence(peak_sr, torch.maximum(ring_sr, ring_hr)).max())
    return _ratio(sr_value, float(_prominence(peak_hr, ring_hr).max()))
