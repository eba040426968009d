"""Figures and the comparison widget: hand-made inputs, files written, values plotted as given."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from srgan_lib import config, tables, viz
from srgan_lib.evaluate import EvalResult


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
    return EvalResult({"psnr": psnr, "ssim": ssim}, "paper", 2, 1)


def test_metrics_vs_crop_plots_table_means(tmp_path):
    runs = {(88, True): [_res(29.0, 0.90), _res(29.2, 0.92)], (128, True): [_res(29.5, 0.91)],
            (88, False): [_res(28.0, 0.89)], (128, False): [_res(28.5, 0.90)]}
    built = [tables.build_table(s, "paper", bicubic=_res(27.0, 0.85), runs=runs, crop_sizes=(88, 128))
             for s in (2, 4)]
    fig = viz.metrics_vs_crop(built, protocol="paper")
    psnr_ax = fig.axes[0]
    tv_on = psnr_ax.lines[0]
    np.testing.assert_allclose(np.asarray(tv_on.get_xdata(), float), [88, 128])
    np.testing.assert_allclose(np.asarray(tv_on.get_ydata(), float), [29.1, 29.5])
    bicubic = [line for line in psnr_ax.lines if line.get_label() == "bicubic"]
    np.testing.assert_allclose(np.asarray(bicubic[0].get_ydata(), float), 27.0)
    assert len(fig.axes) == 4 + 4  # 2 metrics x 2 scales, each with one right-hand axis for the paper's values
    np.testing.assert_allclose(np.asarray(fig.axes[4].lines[0].get_ydata(), float), [29.0084, 29.0127])  # Table 1
    assert _png_ok(viz.save_figure(fig, tmp_path / "crop.png"))
    with pytest.raises(ValueError, match="no table"):
        viz.metrics_vs_crop(built, protocol="standard")


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
