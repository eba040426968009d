"""srgan_lib.stats: the paired confidence interval is calibrated, has power, and is exact on known data."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from srgan_lib.stats import (
    DISTINGUISHABLE,
    NOT_DISTINGUISHABLE,
    paired_difference,
    t_interval,
)

SEEDS, IMAGES, NOISE = 3, 19, 0.02  # the quick profile's layout: 3 seeds x Set5+Set14, noise 0.02 dB per score


def _datasets(rng, count, delta, seed_sd=0.0):
    """``count`` synthetic (A, B) score pairs: per-image noise NOISE, a planted A - B of ``delta``,
    and optionally a seed-to-seed effect (sd ``seed_sd``, the same for every image of a seed)."""
    for _ in range(count):
        base = rng.normal(30.0, 2.0, (1, IMAGES))  # the images' own difficulty, shared by A and B
        a = base + delta + rng.normal(0, NOISE, (SEEDS, IMAGES)) + rng.normal(0, seed_sd, (SEEDS, 1))
        b = base + rng.normal(0, NOISE, (SEEDS, IMAGES)) + rng.normal(0, seed_sd, (SEEDS, 1))
        yield a, b


def _rate(pairs) -> float:
    pairs = list(pairs)
    return sum(paired_difference(a, b).distinguishable for a, b in pairs) / len(pairs)


@pytest.mark.parametrize("seed_sd", [0.0, 0.02])
def test_calibration_on_null_data(seed_sd):
    # 200 seeded null data sets: "distinguishable" must come out in 2-8 % of them (5 % expected),
    # with or without a seed-to-seed effect
    rate = _rate(_datasets(np.random.default_rng(2026), 200, 0.0, seed_sd))
    assert 0.02 <= rate <= 0.08, rate


def test_power_on_a_planted_effect():
    assert _rate(_datasets(np.random.default_rng(7), 200, 0.1)) >= 0.90


def test_an_interval_over_images_would_not_be_calibrated():
    # why the interval is over seeds: with a seed effect of 0.02 dB and no real difference, a paired
    # t-interval over the 19 seed-averaged image differences calls far more than 5 % "distinguishable"
    rng = np.random.default_rng(11)
    wrong = 0
    for a, b in _datasets(rng, 200, 0.0, seed_sd=0.02):
        _, low, high = t_interval((a - b).mean(axis=0))
        wrong += low > 0 or high < 0
    assert wrong / 200 > 0.25


@pytest.mark.equality
def test_interval_matches_the_textbook_formula():
    a = np.array([[30.1, 28.0, 25.5], [30.3, 28.1, 25.4], [30.0, 27.9, 25.7]])
    b = a - np.array([[0.10, 0.05, 0.00], [0.20, 0.10, 0.15], [0.05, 0.00, 0.10]])
    d = paired_difference(a, b)
    per_seed = np.array([0.05, 0.15, 0.05])
    half = scipy_stats.t.ppf(0.975, 2) * per_seed.std(ddof=1) / np.sqrt(3)
    # float64 sums of a few values of ~30: the rounding is ~1e-14, far below the 1e-10 bound
    assert d.mean == pytest.approx(per_seed.mean(), abs=1e-10)
    assert (d.low, d.high) == pytest.approx((per_seed.mean() - half, per_seed.mean() + half), abs=1e-10)
    assert d.over == "seeds" and d.seeds == 3 and d.images == 3


def test_one_seed_falls_back_to_images():
    a = np.array([30.0, 28.0, 26.0, 24.0])
    d = paired_difference(a, a - np.array([0.1, 0.2, 0.1, 0.2]))
    assert d.over == "images" and d.seeds == 1
    assert d.verdict == DISTINGUISHABLE


def test_identical_runs_are_not_distinguishable():
    a = np.full((3, 5), 27.0)
    d = paired_difference(a, a.copy())
    assert (d.mean, d.low, d.high) == (0.0, 0.0, 0.0)
    assert d.verdict == NOT_DISTINGUISHABLE


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="same seeds x images shape"):
        paired_difference(np.zeros((3, 5)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="at least 2"):
        paired_difference(np.zeros((1, 1)), np.zeros((1, 1)))
