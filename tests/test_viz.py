"""Figures and the comparison widget: hand-made inputs, files written, values plotted as given."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from srgan_lib import config, tables, viz
from srgan_lib.evaluate import EvalResult
from srgan_lib.metrics import METRICS


def _png_ok(path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.load()
        return im.size


def test_texture_box_finds_the_textured_corner():
    img = np.full((64, 64, 3), 128, np.uint8)
    img[40:56, 8:24] = (np.indices((16, 16)).sum(0) % 2 * 255)[..., None]  # a checkerboard patch
    top, left, side = viz.texture_box(img, 16)
    assert side == 16 and abs(top - 40) <= 1 and abs(left - 8) <= 1


def test_comparison_figure_has_full_and_zoomed_rows(tmp_path):
    rng = np.random.default_rng(0)
    panels = {k: rng.integers(0, 256, (40, 60, 3), dtype=np.uint8) for k in ("Bicubic x4", "SRGAN x4", "HR")}
    fig = viz.comparison_figure(panels, box=(5, 10, 12), title="t")
    assert len(fig.axes) == 6
    zoom = fig.axes[4].images[0].get_array()  # second column, bottom row: the SRGAN crop
    np.testing.assert_array_equal(zoom, panels["SRGAN x4"][5:17, 10:22])
    path = viz.save_figure(fig, tmp_path / "fig" / "paper_figure.png")
    assert _png_ok(path)[0] > 100
    with pytest.raises(ValueError, match="one size"):
        viz.comparison_figure({"a": panels["HR"], "b": panels["HR"][:20]})


def _res(psnr, ssim):
    """A hand-made result: two images at ``psnr -+ 0.5`` dB, SSIM ``ssim``, the other metrics constant."""
    rows = [{"name": f"i{k}", **{m: 0.5 for m in METRICS}, "psnr": psnr + d, "ssim": ssim}
            for k, d in enumerate((-0.5, 0.5))]
    return EvalResult({**{m: 0.5 for m in METRICS}, "psnr": psnr, "ssim": ssim}, "paper", 2, 2, rows)


def _built():
    runs = {(88, True): [_res(29.0, 0.90), _res(29.2, 0.92)], (128, True): [_res(29.5, 0.91), _res(29.5, 0.91)],
            (88, False): [_res(28.0, 0.89), _res(28.1, 0.89)], (128, False): [_res(28.5, 0.90), _res(28.5, 0.90)]}
    return [tables.build_table(s, "paper", bicubic=_res(27.0, 0.85), runs=runs, crop_sizes=(88, 128)) for s in (2, 4)]


def _errorbars(ax) -> dict:
    """``{label: (x, y, half-lengths of the error bars)}`` of the errorbar plots on ``ax``."""
    out = {}
    for c in ax.containers:
        line, _, (bars,) = c.lines
        out[c.get_label()] = (np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float),
                              np.array([abs(seg[1][1] - seg[0][1]) / 2 for seg in bars.get_segments()]))
    return out


def test_metrics_vs_crop_plots_gains_over_bicubic_beside_the_papers(tmp_path):
    fig = viz.metrics_vs_crop(_built(), protocol="paper")
    assert len(fig.axes) == 2 * 2  # metrics x scales
    psnr_x2, psnr_x4, ssim_x2 = fig.axes[0], fig.axes[1], fig.axes[2]
    ours = _errorbars(psnr_x2)
    # gains over bicubic (27.0 dB): TV on 2.1 +- 0.14 and 2.5 +- 0; TV off 1.05 +- 0.07 and 1.5 +- 0
    x, y, err = ours["ours, TV on"]
    np.testing.assert_allclose(x, [88, 128])
    np.testing.assert_allclose(y, [2.1, 2.5])
    np.testing.assert_allclose(err, [np.sqrt(0.02), 0.0], atol=1e-12)
    np.testing.assert_allclose(ours["ours, TV off"][1], [1.05, 1.5])
    np.testing.assert_allclose(_errorbars(ssim_x2)["ours, TV on"][1], [0.06, 0.06])
    paper = {line.get_label(): line for line in psnr_x2.lines if line.get_label().startswith("paper")}
    # the paper's gains: Table 1 minus its bicubic 28.3654 dB; Table 2 minus 24.5025 dB
    np.testing.assert_allclose(paper["paper, TV on"].get_ydata(), [29.0084 - 28.3654, 29.0127 - 28.3654])
    np.testing.assert_allclose(paper["paper, TV off"].get_ydata(), [28.9112 - 28.3654, 28.9228 - 28.3654])
    paper4 = {line.get_label(): line for line in psnr_x4.lines}
    np.testing.assert_allclose(paper4["paper, TV on"].get_ydata(), [25.0117 - 24.5025, 25.0189 - 24.5025])
    assert _png_ok(viz.save_figure(fig, tmp_path / "crop.png"))
    with pytest.raises(ValueError, match="no table"):
        viz.metrics_vs_crop(_built(), protocol="standard")


def test_differences_plot_marks_distinguishable_differences(tmp_path):
    table = _built()[0]
    fig = viz.differences_plot(table, "psnr")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [d["label"] for d in table.differences]
    points = _errorbars(ax)
    assert len(ax.containers) == len(table.differences)
    for k, (c, d) in enumerate(zip(ax.containers, table.differences)):
        line = c.lines[0]
        diff = d["diff_psnr"]
        assert (float(line.get_xdata()[0]), float(line.get_ydata()[0])) == pytest.approx((diff.mean, k))
        filled = line.get_markerfacecolor() != "white"
        assert filled == diff.distinguishable, d["label"]
    assert points["ours (95 % CI)"][0][0] == pytest.approx(table.differences[0]["diff_psnr"].mean)
    # TV on - off at crop 88: +1.0 and +1.1 dB (seeds 0, 1), 1.05 +- 12.71 x 0.0707 / sqrt(2) = [0.41, 1.69];
    # crop 128 - 88 with TV: +0.5 and +0.3, 0.4 +- 12.71 x 0.141 / sqrt(2) = [-0.87, 1.67]
    by_label = {d["label"]: d["diff_psnr"] for d in table.differences}
    assert by_label["TV on - off, crop 88"].distinguishable and not by_label["crop 128 - 88"].distinguishable
    paper = [line for line in ax.lines if line.get_marker() == "s"]
    assert [float(line.get_xdata()[0]) for line in paper] == pytest.approx(
        [d["paper_psnr"] for d in table.differences if d["paper_psnr"] is not None])
    assert _png_ok(viz.save_figure(fig, tmp_path / "diffs.png"))


def _write_run(folder, cfg, steps=(1, 2, 3, 4)):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(cfg.to_json())
    lines = ["step,phase,g_pixel,g_content,g_adv,g_tv,g_total,d_real,d_fake,d_total,d_x,d_g_z,lr,time"]
    for s in steps:
        gan = s > 2
        lines.append(f"{s},{'gan' if gan else 'mse'},{0.1 / s},,,,{0.1 / s},"
                     + (f"0.5,0.6,1.1,{0.4 + s / 100},{0.3},0.001,{s}" if gan else f",,,,,0.001,{s}"))
    (folder / "metrics.csv").write_text("\n".join(lines) + "\n")
    (folder / "val.csv").write_text("step,psnr,ssim\n2,25.5,0.8\n4,26.0,0.81\n")


def test_training_curves_plot_the_csv_values(tmp_path):
    # names that say nothing: the scale (row) and TV (line style) come from each run's config.json
    smoke = config.get_profile("smoke")
    _write_run(tmp_path / "b", smoke.config(scale=4, crop_size=88, use_tv=True))
    _write_run(tmp_path / "a", smoke.config(scale=2, crop_size=88, use_tv=False))
    fig = viz.training_curves({p.name: p for p in tmp_path.iterdir()})
    axes = fig.axes  # rows x2 then x4, three columns each
    assert len(axes) == 6
    np.testing.assert_allclose(axes[3].lines[0].get_ydata(), [0.1, 0.05, 0.1 / 3, 0.025])  # x4 g_pixel
    np.testing.assert_allclose(axes[4].lines[0].get_ydata(), [25.5, 26.0])  # x4 validation PSNR
    assert axes[3].lines[0].get_linestyle() == "-" and axes[0].lines[0].get_linestyle() == "--"  # TV on / off
    assert _png_ok(viz.save_figure(fig, tmp_path / "curves.png"))


def test_comparison_widget_toggles_views(tmp_path):
    torch = pytest.importorskip("torch")
    from srgan_lib import config, models
    from srgan_lib.checkpoint import save_generator

    torch.manual_seed(0)
    cfg = config.get_profile("smoke").config(scale=2, crop_size=16)
    gen = models.Generator(2, cfg.num_feat, cfg.num_block, cfg.upsample_skip)
    save_generator(tmp_path / "run" / "generator.pt", gen, cfg, 0)
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, (33, 41, 3), dtype=np.uint8)  # odd sizes: mod-cropped to 32 x 40
    box = viz.comparison_widget({"noise": hr}, {"run": tmp_path / "run"})
    _, view, caption, picture = box.children
    view.value = "HR"
    shown = np.asarray(Image.open(io.BytesIO(picture.value)))
    np.testing.assert_array_equal(shown, hr[:32, :40])
    assert "inf dB" in caption.value  # HR against itself
    view.value = "bicubic"
    trip = viz.prepare_triplet(hr, None, 2)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(picture.value))), trip["bicubic"])
    assert "inf dB" not in caption.value
