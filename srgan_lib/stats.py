"""Is a difference real? Paired differences between two methods, their confidence interval, a verdict.

The ablation compares methods that differ in one thing (TV on/off, crop 88/168,
GAN/MSE-only) and share everything else for the same seed: the same
initialisation, the same crops. For each seed ``s`` and validation image ``i``
the paired difference is ``d[s, i] = score_A[s, i] - score_B[s, i]``.

**Which interval, and why.** Two kinds of noise move ``d``: image to image (an
image that suits TV) and seed to seed (one training run that went better than
another, affecting every image alike). A paired t-interval over the *images*
sees only the first: in the simulation of ``tests/test_stats.py``, with a
seed-to-seed spread of 0.02 dB and no real effect it calls about half of all
comparisons "distinguishable". So with two or more seeds the unit of
replication is the training run: each seed's image-averaged difference
``D_s = mean_i d[s, i]`` is one observation, and the interval is the
t-interval of ``D_1..D_S`` (``S - 1`` degrees of freedom)::

    mean(D) +- t_{0.975, S-1} * std(D) / sqrt(S)

It is exact when the ``D_s`` are normal, whatever mix of the two noises made
them, and seeded simulations (``tests/test_stats.py``) find it calls 2-8 % of
null comparisons distinguishable and >= 90 % of 0.1 dB effects. With one seed
the seed-to-seed noise cannot be measured: the interval falls back to the paired
t-interval over images and says that it understates the uncertainty.

A difference is **distinguishable from noise** when its 95 % interval excludes 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as _scipy_stats

LEVEL = 0.95  #: the confidence level of every interval in the tables
DISTINGUISHABLE, NOT_DISTINGUISHABLE = "distinguishable from noise", "not distinguishable"


@dataclass(frozen=True)
class Difference:
    """A paired difference A - B with its confidence interval.

    Attributes:
        mean: the mean of ``d[s, i]`` over seeds and images (the metric's unit, e.g. dB).
        low, high: the ``LEVEL`` confidence interval.
        per_seed: each seed's image-averaged difference ``D_s``.
        images: how many images each seed's difference averages.
        over: ``"seeds"`` (t-interval of the per-seed differences) or ``"images"`` (one seed:
            paired t-interval over images, seed-to-seed noise not included).
    """

    mean: float
    low: float
    high: float
    per_seed: tuple[float, ...]
    images: int
    over: str

    @property
    def seeds(self) -> int:
        return len(self.per_seed)

    @property
    def distinguishable(self) -> bool:
        """True when the interval excludes 0 (an identical pair, ``d = 0`` everywhere, never is)."""
        return self.low > 0 or self.high < 0

    @property
    def verdict(self) -> str:
        return DISTINGUISHABLE if self.distinguishable else NOT_DISTINGUISHABLE

    def format(self, digits: int, unit: str = "") -> str:
        """E.g. ``+0.012 dB [-0.004, +0.028]``."""
        return (f"{self.mean:+.{digits}f}{unit} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]")


def seeds_by_images(by_seed: dict, metric: str) -> np.ndarray:
    """The ``seeds x images`` array :func:`paired_difference` takes, from ``{seed: result}`` (seeds sorted).

    A result needs ``per_image``: one dict per image holding ``metric`` (e.g. an
    :class:`srgan_lib.evaluate.EvalResult`); every result must list the same images in the same order.
    """
    return np.array([[img[metric] for img in by_seed[s].per_image] for s in sorted(by_seed)], dtype=np.float64)


def t_interval(values, level: float = LEVEL) -> tuple[float, float, float]:
    """``(mean, low, high)``: the t-interval of the mean of ``values`` (n >= 2; float64).

    With all values equal (an exactly repeated run) the interval is the point itself.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        raise ValueError(f"a t-interval needs at least 2 values, got {x.size}")
    mean = float(x.mean())
    half = float(_scipy_stats.t.ppf(0.5 + level / 2, x.size - 1)) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def paired_difference(a, b, level: float = LEVEL) -> Difference:
    """The paired difference ``a - b`` of two ``seeds x images`` score arrays, with its interval.

    Args:
        a, b: arrays of shape ``S x I`` (seed ``s`` of A paired with seed ``s`` of B, image
            ``i`` with image ``i``), e.g. per-image PSNR in dB; a 1-D array is one seed.
        level: the confidence level.

    Returns:
        Difference: see the module docstring for the interval (over seeds when ``S >= 2``,
        over images when ``S == 1``).

    Raises:
        ValueError: shapes differ, or too few values (one seed and one image).
    """
    a, b = np.atleast_2d(np.asarray(a, dtype=np.float64)), np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.shape != b.shape:
        raise ValueError(f"paired scores must have the same seeds x images shape, got {a.shape} and {b.shape}")
    d = a - b
    per_seed = d.mean(axis=1)
    if d.shape[0] >= 2:
        mean, low, high = t_interval(per_seed, level)
        over = "seeds"
    else:
        mean, low, high = t_interval(d[0], level)
        over = "images"
    return Difference(mean, low, high, tuple(float(v) for v in per_seed), d.shape[1], over)


def method_text(level: float = LEVEL) -> str:
    """One sentence naming the interval, for table notes."""
    pct = f"{100 * level:g} %"
    return (f"Differences are paired (same seed, same image); [low, high] is the {pct} t-interval over seeds "
            f"of each seed's image-averaged difference (over images when only one seed ran, which leaves "
            f"seed-to-seed noise out); \"distinguishable from noise\" = the interval excludes 0.")
