"""Adding a metric is one function and one entry in ``metrics.METRICS``: it then reaches every output.

A dummy metric (mean absolute error) is registered for one test (``monkeypatch`` removes it after);
a tiny evaluation on Set5 must then score it per image and per set, and the Markdown table, the
tables' CSV and the grid's evaluation CSV files must all carry its column and its values.

The shipped entries beyond PSNR and SSIM, ``texture`` and ``artifact`` (:mod:`srgan_lib.spectra`),
are checked here as registry entries: HR scores as HR under either protocol, bicubic x4 on Set5
as a blur, the border removed before the spectrum.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from srgan_lib import evaluate, images, metrics, protocols, resize, spectra, tables
from srgan_lib.scoring import Scored, write_eval_csv

#: The registry as shipped, in column order.
SHIPPED = ["psnr", "ssim", "texture", "artifact"]


def mae(sr, hr, scoring) -> float:
    """Mean absolute error of one prepared pair (``1 x C x H x W`` float64), border removed."""
    b = scoring.crop_border
    crop = (lambda x: x[..., b:-b, b:-b]) if b else (lambda x: x)
    return float((crop(sr) - crop(hr)).abs().mean())


def _columns_of(metric: str, columns) -> set[str]:
    """The CSV columns that carry ``metric``, with its name taken out (``bicubic_{}_std``, ...)."""
    return {c.replace(metric, "{}") for c in columns if metric in c}


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_registered_metric_reaches_the_results_tables_and_csv_files(monkeypatch, set5_dir, tmp_path):
    monkeypatch.setitem(metrics.METRICS, "mae", metrics.Metric(mae, "MAE", digits=3))

    res = evaluate.evaluate_images(set5_dir, 2, "standard", limit=2, max_side=48)
    nearest = evaluate.evaluate_images(set5_dir, 2, "standard", limit=2, max_side=48,
                                       upscale_fn=lambda lr: lr.repeat_interleave(2, -1).repeat_interleave(2, -2))
    # per image: the MAE of the uint8 Y channels with a 2-pixel border removed, worked out with NumPy
    for row in res.per_image:
        hr = images.mod_crop(images.center_crop(images.load_image(set5_dir / row["name"]), 48), 2)
        sr = resize.imresize(resize.imresize(hr, 1 / 2), 2)
        y_hr, y_sr = (images.rgb_to_y(a)[2:-2, 2:-2].astype(np.float64) for a in (hr, sr))
        assert row["mae"] == pytest.approx(np.abs(y_sr - y_hr).mean(), abs=1e-12)
    assert res.values["mae"] == pytest.approx(np.mean([r["mae"] for r in res.per_image]))  # default: the mean
    assert list(res.values) == [*SHIPPED, "mae"] and res.mae == res.values["mae"]
    assert nearest.mae > res.mae > 0  # pixel repetition is further from HR than bicubic

    # Markdown and CSV tables: MAE gets the columns every metric gets, with the bicubic and SRGAN values
    # (checked without the tables' layout, which tests/test_tables.py owns)
    built = tables.build_table(2, "standard", bicubic=res, runs={(88, True): [nearest]}, crop_sizes=(88,))
    md_path, csv_path = tables.write_tables([built], tmp_path / "tables")[2]
    md = md_path.read_text()
    assert "MAE (ours)" in md and f"{res.mae:.3f}" in md and f"{nearest.mae:.3f}" in md
    assert _columns_of("mae", tables.csv_columns()) == _columns_of("ssim", tables.csv_columns())
    mae_cells = [float(v) for row in _rows(csv_path) for k, v in row.items() if "mae" in k and v not in ("", None)]
    assert any(v == pytest.approx(res.mae, abs=1e-6) for v in mae_cells)
    assert any(v == pytest.approx(nearest.mae, abs=1e-6) for v in mae_cells)

    # the grid's evaluation files: per image and per set
    scored = [Scored("standard", "bicubic", 2, res), Scored("standard", "nearest", 2, nearest)]
    per_image_csv, summary_csv = write_eval_csv(scored, tmp_path / "eval")
    per_image = _rows(per_image_csv)
    assert list(per_image[0])[-len(SHIPPED) - 1:] == [*SHIPPED, "mae"]
    assert [float(r["mae"]) for r in per_image] == pytest.approx(
        [img["mae"] for s in scored for img in s.result.per_image], abs=1e-6)
    assert [float(r["mae"]) for r in _rows(summary_csv)] == pytest.approx([res.mae, nearest.mae], abs=1e-6)


def test_the_registry_is_the_shipped_one_again():
    """monkeypatch took the dummy out: the shipped registry and the columns derived from it."""
    assert list(metrics.METRICS) == SHIPPED
    columns = tables.csv_columns()
    assert "mae" not in " ".join(columns)
    for m in SHIPPED:  # the spectral metrics get the columns PSNR and SSIM get
        assert _columns_of(m, columns) == _columns_of("ssim", columns)


@pytest.mark.parametrize("protocol", protocols.PROTOCOLS)
def test_hr_scores_as_hr(set5_dir, protocol):
    hr, _ = protocols.make_pair(images.load_image(set5_dir / "bird.png"), 4, protocol)
    row = protocols.score_image(hr, hr, 4, protocol)
    assert row["texture"] == 1.0 and row["artifact"] == 1.0


def test_bicubic_x4_on_set5_is_a_blur_without_periodic_artifacts(set5_dir):
    """Texture ratio and artifact score far below 1; per image, the spectra of the Y channel with 4 pixels cut."""
    res = evaluate.evaluate_images(set5_dir, 4, "standard")
    for row in res.per_image:
        hr = images.mod_crop(images.load_image(set5_dir / row["name"]), 4)
        sr = resize.imresize(resize.imresize(hr, 1 / 4), 4)
        y_hr, y_sr = (torch.from_numpy(images.rgb_to_y(a)[4:-4, 4:-4].astype(np.float64))[None, None]
                      for a in (hr, sr))
        assert row["texture"] == pytest.approx(spectra.texture_ratio(y_sr, y_hr), rel=1e-12)
        assert row["artifact"] == pytest.approx(spectra.artifact_score(y_sr, y_hr), rel=1e-12)
        # measured 0.0016-0.015 and 0.0004-0.25: x4 bicubic passes almost nothing above half Nyquist
        assert row["texture"] < 0.05 and row["artifact"] < 0.5
    assert res.texture == pytest.approx(np.mean([r["texture"] for r in res.per_image]))
