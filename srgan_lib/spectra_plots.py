"""Figures of what the adversary does to the spectrum: :mod:`srgan_lib.spectra` drawn.

* :func:`plot_spectra` -- radially averaged power spectra of one scene (HR, bicubic, MSE, GAN), log-log;
* :func:`plot_perception_distortion` -- PSNR against texture ratio per method, mean ± std over seeds;
* :func:`plot_stripes` -- a crop of SR and HR beside their 2-D log spectra, the sub-pixel grid's
  frequencies circled: where a checkerboard or stripes show up.

Every function returns a :class:`matplotlib.figure.Figure` (drawn into ``ax`` when one is given);
:func:`srgan_lib.viz.save_figure` writes it. Images are ``1 x 3 x H x W`` float tensors in
``[0, 1]`` or ``H x W x 3`` uint8 arrays (see :func:`srgan_lib.spectra.luma_of`).
"""

from __future__ import annotations

import numpy as np
import torch

from .images import to_uint8
from .spectra import GRID_FREQS, power_spectrum, radial_power_spectrum
from .viz import _plt, texture_box

#: Where :func:`plot_spectra` marks the start of "high" frequencies, as :func:`srgan_lib.spectra.hf_energy`'s default.
CUTOFF = 0.5


def _axes(ax, figsize=(5.0, 3.8)):
    """``(figure, ax)``: the given axes' figure, or a new figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = _plt().subplots(figsize=figsize)
    return fig, ax


def plot_spectra(images: dict, ax=None, cutoff: float = CUTOFF):
    """Radially averaged power spectra of images of one scene, log-log, with the cutoff marked.

    A blur falls away at high frequencies; an adversarially trained network lifts them back
    towards HR's; noise or artifacts rise above HR's.

    Args:
        images: ``{label: image}``, e.g. ``{"HR": ..., "bicubic": ..., "SRResNet": ..., "SRGAN": ...}``;
            each ``1 x 3 x H x W`` float in ``[0, 1]`` or ``H x W x 3`` uint8.
        ax: the axes to draw into (default: a new figure).
        cutoff: the normalised frequency marked by a dashed vertical line (1 = Nyquist).

    Returns:
        Figure: one line per image (labelled), then the cutoff line.
    """
    fig, ax = _axes(ax)
    for label, img in images.items():
        freqs, power = radial_power_spectrum(img)
        ax.loglog(freqs, power, lw=1.2, label=label)
    ax.axvline(cutoff, color="gray", ls="--", lw=0.8)
    ax.text(cutoff, 0.02, f" {cutoff:g} x Nyquist", transform=ax.get_xaxis_transform(), fontsize=7, color="gray")
    _label(ax, "spatial frequency (1 = Nyquist)", "power of the luma (0-255 scale)²", "radially averaged power spectrum")
    return fig


def _label(ax, xlabel: str, ylabel: str, title: str) -> None:
    """Axis labels, a small title, a light grid and the legend: the same for every plot here."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)


def _mean_std(value) -> tuple[float, float]:
    """A number, or per-seed values (a sequence, or a :class:`srgan_lib.evaluate.Stat`), as (mean, sample std)."""
    values = np.atleast_1d(np.asarray(getattr(value, "values", value), dtype=np.float64))
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def plot_perception_distortion(points: dict, ax=None):
    """PSNR (y) against texture ratio (x, log) per method: the perception-distortion trade-off.

    MSE training climbs the PSNR axis at a texture ratio far below 1 (a blur); the adversary
    moves right, towards HR's detail, and pays in PSNR. A vertical line marks ratio 1.

    Args:
        points: ``{method: (texture, psnr)}``; each of the two a number or the values over seeds
            (a sequence or a :class:`srgan_lib.evaluate.Stat`), drawn as mean ± std error bars.
        ax: the axes to draw into (default: a new figure).

    Returns:
        Figure: one labelled error-bar marker per method and the line at ratio 1.
    """
    fig, ax = _axes(ax)
    for method, (texture, psnr) in points.items():
        (x, dx), (y, dy) = _mean_std(texture), _mean_std(psnr)
        ax.errorbar([x], [y], xerr=[dx] if dx else None, yerr=[dy] if dy else None, marker="o", capsize=3,
                    ls="none", label=method)
        ax.annotate(method, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
    ax.axvline(1.0, color="gray", ls="--", lw=0.8, label="as much detail as HR")
    ax.set_xscale("log")
    _label(ax, "texture ratio (high-frequency energy / HR's)", "PSNR (dB)", "perception-distortion")
    return fig


def _uint8(img) -> np.ndarray:
    return np.asarray(img) if isinstance(img, np.ndarray) else to_uint8(img.detach()[0] if img.ndim == 4 else img)


def _log_spectrum(img) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """``log10`` of the centred power spectrum (DC in the middle) and its ``imshow`` extent in cycles per pixel."""
    power, _ = power_spectrum(img)
    h, w = power.shape
    shifted = torch.fft.fftshift(power).cpu().numpy()
    floor = max(float(shifted[shifted > 0].min()) if (shifted > 0).any() else 1.0, 1e-12)
    fy, fx = np.fft.fftshift(np.fft.fftfreq(h)), np.fft.fftshift(np.fft.fftfreq(w))
    half_y, half_x = 0.5 / h, 0.5 / w
    return np.log10(np.maximum(shifted, floor)), (fx[0] - half_x, fx[-1] + half_x, fy[-1] + half_y, fy[0] - half_y)


def grid_points() -> list[tuple[float, float]]:
    """Every grid frequency and its mirror, ``(fy, fx)`` in ``[-1/2, 1/2)`` cycles per pixel (15 points)."""
    points = set()
    for fy, fx in GRID_FREQS:
        for sign in (1, -1):
            points.add(((sign * fy + 0.5) % 1.0 - 0.5, (sign * fx + 0.5) % 1.0 - 0.5))
    return sorted(points)


def plot_stripes(sr, hr, crop: int = 64, labels: tuple[str, str] = ("SR", "HR")):
    """A crop of SR and of HR (top) and their whole 2-D log power spectra (bottom), grid frequencies circled.

    The classic failure of a sub-pixel upsampler, a checkerboard or stripes of period 2 or 4, is a
    bright dot on a circle in SR's spectrum that HR's lacks
    (:func:`srgan_lib.spectra.artifact_score` measures it).

    Args:
        sr, hr: one image each, of one size: ``1 x 3 x H x W`` float in ``[0, 1]`` or ``H x W x 3`` uint8.
        crop: side of the crop shown, taken where HR has the most texture (:func:`srgan_lib.viz.texture_box`).
        labels: the two columns' titles.

    Returns:
        Figure: 2 x 2 axes; each spectrum axes carries one circle marker per grid frequency (15).
    """
    plt = _plt()
    sr_u8, hr_u8 = _uint8(sr), _uint8(hr)
    top, left, side = texture_box(hr_u8, crop)
    fig, axes = plt.subplots(2, 2, figsize=(7.0, 7.0))
    marks = np.array(grid_points())
    for col, (label, img, u8) in enumerate(zip(labels, (sr, hr), (sr_u8, hr_u8))):
        axes[0, col].imshow(u8[top:top + side, left:left + side], interpolation="nearest")
        axes[0, col].set_title(f"{label}: {side} x {side} crop", fontsize=9)
        axes[0, col].set_xticks([])
        axes[0, col].set_yticks([])
        log_power, extent = _log_spectrum(img)
        axes[1, col].imshow(log_power, extent=extent, cmap="magma")
        axes[1, col].plot(marks[:, 1], marks[:, 0], ls="none", marker="o", ms=9, mfc="none", mec="cyan", mew=0.8)
        axes[1, col].set_title(f"{label}: log10 power, grid frequencies circled", fontsize=9)
        axes[1, col].set_xlabel("fx (cycles / pixel)")
        axes[1, col].set_ylabel("fy (cycles / pixel)")
    fig.tight_layout()
    return fig
