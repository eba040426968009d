"""The spectra figures draw headless, with one line or marker per input and the values given."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from srgan_lib import spectra, spectra_plots, viz
from srgan_lib.evaluate import Stat


def _scene(seed: int = 0) -> dict:
    """Three 48 x 56 images of one scene: smooth, blurred (a box average), noisy; ``1 x 3 x H x W`` in ``[0, 1]``."""
    rng = np.random.default_rng(seed)
    base = torch.from_numpy(np.clip(0.5 + 0.2 * rng.standard_normal((1, 3, 48, 56)), 0, 1))
    blurred = torch.nn.functional.avg_pool2d(base, 3, stride=1, padding=1, count_include_pad=False)
    noise = torch.randn(base.shape, dtype=base.dtype, generator=torch.Generator().manual_seed(seed))
    return {"HR": base, "blurred": blurred, "noisy": base + 0.05 * noise}


def test_plot_spectra_draws_one_line_per_image_and_the_cutoff(tmp_path):
    scene = _scene()
    fig = spectra_plots.plot_spectra(scene, cutoff=0.5)
    ax = fig.axes[0]
    curves = [line for line in ax.lines if line.get_label() in scene]
    assert [c.get_label() for c in curves] == list(scene) and len(ax.lines) == len(scene) + 1
    freqs, power = spectra.radial_power_spectrum(scene["blurred"])
    np.testing.assert_array_equal(curves[1].get_xdata(), freqs)
    np.testing.assert_array_equal(curves[1].get_ydata(), power)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    np.testing.assert_array_equal(ax.lines[-1].get_xdata(), [0.5, 0.5])  # the cutoff
    with Image.open(viz.save_figure(fig, tmp_path / "spectra.png")) as im:
        assert im.size[0] > 100


def test_plot_perception_distortion_one_marker_per_method_with_seed_error_bars():
    points = {"bicubic": (0.007, 28.4), "SRResNet": ([0.20, 0.24], [30.1, 30.3]),
              "SRGAN": (Stat((0.9, 1.1, 1.0)), Stat((28.0, 28.2, 28.1)))}
    fig = spectra_plots.plot_perception_distortion(points)
    ax = fig.axes[0]
    assert len(ax.containers) == len(points)  # one errorbar container per method
    markers = {c.get_label(): c.lines[0] for c in ax.containers}
    assert list(markers) == list(points)
    xy = {m: (np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)) for m, line in markers.items()}
    np.testing.assert_allclose(xy["SRGAN"], [[1.0], [28.1]])  # the means over seeds
    np.testing.assert_allclose(xy["SRResNet"], [[0.22], [30.2]])
    np.testing.assert_array_equal(xy["bicubic"], [[0.007], [28.4]])
    bars = {c.get_label(): c.lines[2] for c in ax.containers}
    assert len(bars["bicubic"]) == 0 and len(bars["SRGAN"]) == 2  # a single value has no error bar; seeds have x and y
    ratio_one = [line for line in ax.lines if line.get_label() == "as much detail as HR"]
    assert len(ratio_one) == 1 and list(ratio_one[0].get_xdata()) == [1.0, 1.0]
    assert ax.get_xscale() == "log"


def test_plot_stripes_marks_the_grid_frequencies_on_both_spectra(tmp_path):
    rng = np.random.default_rng(1)
    hr = rng.integers(125, 132, (40, 44, 3), dtype=np.uint8)  # grey with a little noise
    sr = (hr.astype(int) + np.where(np.arange(40) % 2, 6, -6)[:, None, None]).astype(np.uint8)  # stripes, period 2
    fig = spectra_plots.plot_stripes(sr, torch.from_numpy(hr).permute(2, 0, 1)[None] / 255.0, crop=16)
    assert len(fig.axes) == 4
    assert fig.axes[0].images[0].get_array().shape == (16, 16, 3)
    for ax in fig.axes[2:]:
        (marks,) = ax.lines
        assert len(marks.get_xdata()) == 15  # 4 x 4 combinations of 0, +-1/4, 1/2, less DC
    sr_spec, hr_spec = (ax.images[0].get_array() for ax in fig.axes[2:])
    # fy = -1/2 is the top row, fx = 0 the middle column: the stripes put 100 x more power there than HR has
    assert sr_spec[0, 22] > hr_spec[0, 22] + 2 and sr_spec[0, 22] == sr_spec.max()
    with Image.open(viz.save_figure(fig, tmp_path / "stripes.png")) as im:
        assert im.size[0] > 100


def test_grid_points_are_the_fifteen_nonzero_combinations():
    expected = {(a, b) for a in (-0.5, -0.25, 0.0, 0.25) for b in (-0.5, -0.25, 0.0, 0.25)} - {(0.0, 0.0)}
    assert set(spectra_plots.grid_points()) == expected


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    viz._plt().close("all")
