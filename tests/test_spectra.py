"""The luma's power spectrum, the texture ratio and the artifact score: known answers and real images.

Known answers: Parseval and NumPy's FFT for the spectrum, a cosine (its energy is exactly ``A^2 / 2``
and sits at its own frequency), white noise (flat at its variance). Real images (Set5's bird): a
blur lowers the texture ratio, noise raises it, stripes at the sub-pixel grid's periods raise the
artifact score by orders of magnitude while a stripe off the grid does not.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from srgan_lib import images, protocols, resize, spectra
from srgan_lib.errors import DataError

EPS = np.finfo(np.float64).eps


def _t(arr) -> torch.Tensor:
    """``H x W x C`` (or ``H x W``) float array -> ``1 x C x H x W`` float64 tensor, values unchanged."""
    arr = np.asarray(arr, dtype=np.float64)
    arr = arr[..., None] if arr.ndim == 2 else arr
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]


@pytest.fixture(scope="module")
def bird() -> np.ndarray:
    """Set5's bird, ``288 x 288 x 3`` float64 RGB in ``[0, 1]``."""
    from conftest import benchmark_path

    return images.load_image(benchmark_path("Set5", "HR", "bird.png")).astype(np.float64) / 255.0


def _hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic Hann, written out


# ----------------------------------------------------------------------------- the spectrum


@pytest.mark.parametrize("shape", [(288, 288), (37, 50), (50, 37)])
def test_power_spectrum_is_numpys_fft_of_the_windowed_luma(bird, shape):
    """Against the formula written out with NumPy's full FFT (odd and even sides: the mirrored half)."""
    rgb = bird[: shape[0], : shape[1]]
    y = images.luma(*(255.0 * rgb[..., c] for c in range(3)))
    window = np.outer(_hann(shape[0]), _hann(shape[1]))
    x = window * (y - (window * y).sum() / window.sum())
    expected = np.abs(np.fft.fft2(x)) ** 2 / (window**2).sum()
    power, rho = spectra.power_spectrum(_t(rgb))
    # float64 FFTs of the same data in another order: each power is off by a few eps x log2(HW) of the largest
    np.testing.assert_allclose(power.numpy(), expected, rtol=0, atol=16 * EPS * np.log2(y.size) * expected.max())
    fy, fx = np.meshgrid(np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1]), indexing="ij")
    np.testing.assert_allclose(rho.numpy(), np.hypot(fy, fx), rtol=1e-15)
    assert power[0, 0] < 1e-20 * expected.max()  # the weighted mean is removed: no DC
    high = 2 * np.hypot(fy, fx) >= 0.5  # hf_energy reads half the plane: its mirrored columns count twice
    assert spectra.hf_energy(_t(rgb)) == pytest.approx(expected[high].sum() / y.size, rel=1e-12)


def test_parseval_the_bins_sum_to_the_windowed_variance(bird):
    """``mean(P)`` over all bins (``hf_energy`` at cutoff 0) is ``sum(w^2 (y - m)^2) / sum(w^2)``, computed directly."""
    y = images.luma(*(255.0 * bird[..., c] for c in range(3)))
    w2 = np.outer(_hann(288), _hann(288)) ** 2
    direct = (w2 * (y - (np.sqrt(w2) * y).sum() / np.sqrt(w2).sum()) ** 2).sum() / w2.sum()
    # FFT round-off grows as eps x log2(N) per coefficient, the sums of positive terms add as much again:
    # 8 eps log2(HW) ~ 3e-14 is tight, yet 1e6 times below what a missing factor or a lost half would give
    assert spectra.hf_energy(_t(bird), cutoff=0.0) == pytest.approx(direct, rel=8 * EPS * np.log2(y.size))


def test_a_cosine_has_its_energy_at_its_frequency():
    """``A cos(2 pi 20 x / 64)``: windowed variance exactly ``A^2 / 2``, all of it at ``r = 40 / 64``."""
    a, n = 7.0, 64
    img = torch.from_numpy(np.tile(a * np.cos(2 * np.pi * 20 * np.arange(n) / n), (n, 1)))
    # the window's spectrum has bins 0 and +-1 only (w^2's: up to +-2), so nothing leaks as far as DC or 2 f
    assert spectra.hf_energy(img, 0.0) == pytest.approx(a**2 / 2, rel=1e-13)
    assert spectra.hf_energy(img, 0.5) == pytest.approx(a**2 / 2, rel=1e-13)  # the peak's bins are all at r > 0.5
    assert spectra.hf_energy(img, 0.7) < 1e-20
    freqs, power = spectra.radial_power_spectrum(img)
    assert len(freqs) == n // 2 and freqs[-1] == 1.0
    assert freqs[np.argmax(power)] == pytest.approx(2 * 20 / n)


def test_white_noise_is_flat_at_its_variance():
    """``E P = s^2`` in every bin: the radial average of seeded noise (s = 3) within 4% of 9 beyond the first bins."""
    rng = np.random.default_rng(0)
    freqs, power = spectra.radial_power_spectrum(torch.from_numpy(3.0 * rng.standard_normal((256, 256))))
    # ~50,000 bins, correlated in threes by the window: the mean's standard error is under 1%, 4% is 5 of them
    assert power[4:].mean() == pytest.approx(9.0, rel=0.04)
    assert np.all(np.diff(freqs) > 0) and freqs[0] == pytest.approx(2 / 256)


def test_the_image_can_be_a_tensor_an_array_or_the_luma(bird):
    u8 = np.rint(bird * 255).astype(np.uint8)
    as_tensor = spectra.power_spectrum(_t(u8 / 255.0))[0]  # 1 x 3 x H x W in [0, 1]
    as_array = spectra.power_spectrum(u8)[0]
    y = images.luma(*(u8[..., c].astype(np.float64) for c in range(3)))
    as_luma = spectra.power_spectrum(_t(y))[0]
    scale = float(as_array.max())
    torch.testing.assert_close(as_tensor, as_array, rtol=0, atol=1e-12 * scale)  # / 255 then * 255: the last bits
    torch.testing.assert_close(as_luma, as_array, rtol=0, atol=1e-12 * scale)


def test_too_small_or_misshapen_images_are_refused():
    with pytest.raises(DataError, match="at least 8 x 8"):
        spectra.hf_energy(torch.zeros(1, 3, 7, 40))
    with pytest.raises(ValueError, match="1 x 3 x H x W"):
        spectra.hf_energy(torch.zeros(2, 3, 16, 16))


# ----------------------------------------------------------------------------- texture


def test_texture_ratio_is_one_for_hr_below_for_blur_above_for_noise(bird):
    hr = _t(bird)
    assert spectra.texture_ratio(hr, hr) == 1.0
    blurred = [spectra.texture_ratio(_t(ndimage.gaussian_filter(bird, (s, s, 0))), hr) for s in (0.5, 1.0, 2.0)]
    assert 1 > blurred[0] > blurred[1] > blurred[2] > 0
    rng = np.random.default_rng(0)
    noisy = [spectra.texture_ratio(_t(bird + s / 255 * rng.standard_normal(bird.shape)), hr) for s in (1, 4)]
    assert 1 < noisy[0] < noisy[1]


# ----------------------------------------------------------------------------- artifacts


def test_artifact_score_is_one_for_hr(bird):
    assert spectra.artifact_score(_t(bird), _t(bird)) == 1.0


def test_faint_stripes_on_the_grid_are_seen_and_off_the_grid_are_not(bird):
    """2/255 of amplitude (invisible) on a blurred copy: periods 2 and 4 and a checkerboard light up, period 3 not."""
    hr, blurred = _t(bird), ndimage.gaussian_filter(bird, (1.5, 1.5, 0))
    rows, cols = np.indices(bird.shape[:2])
    clean = spectra.artifact_score(_t(blurred), hr)
    assert clean < 1  # a blur has less at the grid frequencies than HR

    def score(pattern):
        return spectra.artifact_score(_t(blurred + 2 / 255 * pattern[..., None]), hr)

    assert score(np.cos(np.pi * rows)) > 1000 * clean and score(np.cos(np.pi * rows)) > 3  # period 2
    assert score(np.cos(np.pi * rows / 2)) > 1000 * clean  # period 4
    assert score(np.cos(np.pi * (rows + cols))) > 1000 * clean  # checkerboard
    assert score(np.cos(2 * np.pi * rows / 3)) == pytest.approx(clean, rel=1e-6)  # period 3: not the grid's


@pytest.mark.parametrize("side", [64, 66, 67])
def test_the_peak_is_found_when_the_side_is_not_a_multiple_of_4(side):
    """Period 4 on 66 or 67 rows falls between bins: the neighbourhood holds the bins on both sides."""
    rng = np.random.default_rng(side)
    hr = rng.standard_normal((side, side))
    stripes = hr + 0.5 * np.cos(np.pi * np.arange(side) / 2)[:, None]
    assert spectra.artifact_score(_t(stripes), _t(hr)) > 5
    peaks, rings = spectra._grid_geometry(side, side + 3)
    quarter = spectra.GRID_FREQS.index((0.25, 0.0))
    rows = {int(i) // (side + 3) for i in peaks[quarter]}
    assert {int(np.floor(side / 4)), int(np.ceil(side / 4))} <= rows  # 16 and 17 for 66 rows
    every_peak = set(torch.cat(peaks).tolist())
    for ring in rings:  # each ring is big enough, even in the corners, and holds no peak's bin
        assert len(ring) >= spectra.RING_MIN and not every_peak & set(ring.tolist())


def test_stripes_that_pass_for_texture_are_seen_as_artifacts(set5_dir):
    """Review's failure: a GAN's stripes at the sub-pixel period raised the texture ratio to 1.07.

    Bicubic x4 of bird (luma, standard protocol) plus either period-2 stripes or white noise, each
    sized to bring the texture ratio to 1.07: only the stripes score as artifacts.
    """
    hr, lr = protocols.make_pair(images.load_image(set5_dir / "bird.png"), 4)
    bicubic = resize.imresize(lr, size=hr.shape[:2])
    hr_y, bic_y = (images.rgb_to_y(a)[4:-4, 4:-4].astype(np.float64) for a in (hr, bicubic))
    missing = 1.07 * spectra.hf_energy(_t(hr_y)) - spectra.hf_energy(_t(bic_y))
    # a period-2 stripe of amplitude A puts its whole windowed variance A^2 at r ~ 1; white noise of
    # variance s^2 puts the share of bins with r >= 0.5, 1 - pi / 16, of it above the cutoff
    rows = np.arange(hr_y.shape[0])[:, None]
    striped = _t(bic_y + np.sqrt(missing) * np.cos(np.pi * rows))
    noisy = _t(bic_y + np.sqrt(missing / (1 - np.pi / 16)) * np.random.default_rng(0).standard_normal(hr_y.shape))
    for sr in (striped, noisy):
        assert spectra.texture_ratio(sr, _t(hr_y)) == pytest.approx(1.07, abs=0.05)
    assert spectra.artifact_score(striped, _t(hr_y)) > 100
    assert spectra.artifact_score(noisy, _t(hr_y)) < 1.5


def test_the_spectrum_cache_never_returns_another_images_spectrum():
    # _half_power keeps recent results by tensor; an in-place change or a new tensor must not hit
    from srgan_lib import spectra

    img = torch.rand(1, 3, 40, 48, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    first = spectra.hf_energy(img)
    assert spectra.hf_energy(img) == first  # a hit: the same pixels
    img.mul_(0.5)  # in place: the version counter changes, so does the energy (by 1/4)
    assert spectra.hf_energy(img) == pytest.approx(first / 4, rel=1e-12)
    other = torch.rand(1, 3, 40, 48, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert spectra.hf_energy(other) != pytest.approx(first / 4, rel=1e-3)
    assert len(spectra._RECENT) <= spectra._RECENT_SIZE
