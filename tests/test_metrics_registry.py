"""Adding a metric is one function and one entry in ``metrics.METRICS``: it then reaches every output.

A dummy metric (mean absolute error) is registered for one test (``monkeypatch`` removes it after);
a tiny evaluation on Set5 must then score it per image and per set, and the Markdown table, the
tables' CSV and the grid's evaluation CSV files must all carry its column and its values.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from srgan_lib import ablation, evaluate, images, metrics, resize, tables


def mae(sr, hr, scoring) -> float:
    """Mean absolute error of one prepared pair (``1 x C x H x W`` float64), border removed."""
    b = scoring.crop_border
    crop = (lambda x: x[..., b:-b, b:-b]) if b else (lambda x: x)
    return float((crop(sr) - crop(hr)).abs().mean())


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
    assert list(res.values) == ["psnr", "ssim", "mae"] and res.mae == res.values["mae"]
    assert nearest.mae > res.mae > 0  # pixel repetition is further from HR than bicubic

    # Markdown and CSV tables: a bicubic and an SRGAN column for MAE, the paper's cells empty
    built = tables.build_table(2, "standard", bicubic=res, runs={(88, True): [nearest]}, crop_sizes=(88,))
    md_path, csv_path = tables.write_tables([built], tmp_path / "tables")[2]
    md = md_path.read_text()
    assert "| Bicubic MAE (ours) | (paper) | Δ |" in md and "| SRGAN MAE (ours) | (paper) | Δ |" in md
    first_row = next(line for line in md.splitlines() if line.startswith("| Crop size(88) |"))
    cells = [c.strip() for c in first_row.strip("|").split("|")]
    # label, then (ours, paper, Δ) for bicubic PSNR, SSIM, MAE, then SRGAN PSNR, SSIM, MAE
    assert cells[7:10] == [f"{res.mae:.3f}", "", ""] and cells[16:19] == [f"{nearest.mae:.3f}", "", ""]
    table_rows = _rows(csv_path)
    assert {"bicubic_mae", "bicubic_mae_std", "bicubic_mae_paper", "bicubic_mae_diff", "srgan_mae"} <= set(
        table_rows[0])
    assert float(table_rows[0]["bicubic_mae"]) == pytest.approx(res.mae, abs=1e-6)
    assert float(table_rows[0]["srgan_mae"]) == pytest.approx(nearest.mae, abs=1e-6)
    assert table_rows[0]["bicubic_mae_paper"] == "" and table_rows[0]["srgan_mae_diff"] == ""

    # the grid's evaluation files: per image and per set
    scored = [ablation.Scored("standard", "bicubic", 2, res), ablation.Scored("standard", "nearest", 2, nearest)]
    per_image_csv, summary_csv = ablation.write_eval_csv(scored, tmp_path / "eval")
    per_image = _rows(per_image_csv)
    assert list(per_image[0])[-3:] == ["psnr", "ssim", "mae"]
    assert [float(r["mae"]) for r in per_image] == pytest.approx(
        [img["mae"] for s in scored for img in s.result.per_image], abs=1e-6)
    assert [float(r["mae"]) for r in _rows(summary_csv)] == pytest.approx([res.mae, nearest.mae], abs=1e-6)


def test_the_registry_is_psnr_and_ssim_again():
    """monkeypatch took the dummy out: the shipped registry and the columns derived from it."""
    assert list(metrics.METRICS) == ["psnr", "ssim"]
    assert [c for c in tables.csv_columns() if c.endswith("_diff")] == [
        "bicubic_psnr_diff", "bicubic_ssim_diff", "srgan_psnr_diff", "srgan_ssim_diff"]
