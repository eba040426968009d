"""The grid: reuse of finished runs, the evaluation CSV files and the tables it writes (tables: test_tables.py)."""

from __future__ import annotations

import csv
import dataclasses

import pytest

from srgan_lib import ablation, config
from srgan_lib.evaluate import EvalResult


def test_eval_csv_has_a_column_per_metric_and_stores_the_set_values(tmp_path):
    cfg = config.get_profile("smoke").config(scale=2, crop_size=88)
    per_image = [{"name": "a.png", "mse": 0.01, "psnr": 20.0, "ssim": 0.5},
                 {"name": "b.png", "mse": 0.0001, "psnr": 40.0, "ssim": 0.7}]
    # under `paper` the set's PSNR is that of the mean MSE (23.0 dB), not the mean of 20 and 40: stored as given
    scored = [ablation.Scored("paper", "bicubic", 2, EvalResult({"psnr": 22.9, "ssim": 0.6}, "paper", 2, 2, per_image)),
              ablation.Scored("paper", "srgan_x2_c88_tv1_s0", 2,
                              EvalResult({"psnr": 23.0, "ssim": 0.625}, "paper", 2, 2, per_image), cfg)]
    paths = ablation.write_eval_csv(scored, tmp_path)
    assert [p.name for p in paths] == ["per_image_paper.csv", "summary.csv"]
    with open(paths[0], newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["method", "scale", "crop_size", "use_tv", "seed", "image", "psnr", "ssim"]
    assert [(r["method"], r["image"], r["psnr"], r["ssim"]) for r in rows] == [
        ("bicubic", "a.png", "20.000000", "0.500000"), ("bicubic", "b.png", "40.000000", "0.700000"),
        ("srgan_x2_c88_tv1_s0", "a.png", "20.000000", "0.500000"),
        ("srgan_x2_c88_tv1_s0", "b.png", "40.000000", "0.700000")]
    assert (rows[0]["crop_size"], rows[2]["crop_size"], rows[2]["use_tv"], rows[2]["seed"]) == ("", "88", "1", "0")
    with open(paths[1], newline="") as f:
        summary = list(csv.DictReader(f))
    assert list(summary[0]) == ["protocol", "method", "scale", "crop_size", "use_tv", "seed", "count", "psnr", "ssim"]
    assert [(r["method"], r["count"], r["psnr"], r["ssim"]) for r in summary] == [
        ("bicubic", "2", "22.900000", "0.600000"), ("srgan_x2_c88_tv1_s0", "2", "23.000000", "0.625000")]


@pytest.fixture
def one_thread():
    """Tiny networks run ~10x faster on one thread than on two on a loaded 2-core machine (thread spin-waits)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_profile():
    """Two cells (x4, crop 16, TV on/off) of tiny networks trained for 2 iterations."""
    base = dataclasses.replace(config.get_profile("smoke").base, warmup_iters=1, gan_iters=1, val_images=0,
                               log_every=1, ckpt_every=1, device="cpu")
    return config.Profile("smoke", "test", base, scales=(4,), crop_sizes=(16,))


def test_grid_reuses_finished_runs_and_writes_eval_and_tables(tiny_profile, tmp_path, one_thread):
    runs = ablation.run_grid(tiny_profile, runs_root=tmp_path / "runs", progress=False)
    assert list(runs) == ["srgan_x4_c16_tv1_s0", "srgan_x4_c16_tv0_s0"]
    stamps = {n: (d / "generator.pt").stat().st_mtime_ns for n, d in runs.items()}
    metrics = {n: (d / "metrics.csv").read_text() for n, d in runs.items()}
    again = ablation.run_grid(tiny_profile, runs_root=tmp_path / "runs", progress=False)
    assert again == runs
    assert {n: (d / "generator.pt").stat().st_mtime_ns for n, d in again.items()} == stamps  # not retrained
    assert {n: (d / "metrics.csv").read_text() for n, d in again.items()} == metrics

    scored = ablation.evaluate_grid(tiny_profile, runs, out_dir=tmp_path / "eval", device="cpu", progress=False)
    # bicubic + 2 runs, under both protocols
    assert sorted((s.protocol, s.method) for s in scored) == sorted(
        (p, m) for p in ("standard", "paper") for m in ("bicubic", *runs))
    with open(tmp_path / "eval" / "per_image_standard.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 2  # 3 methods x the 2 validation images of the smoke profile
    built = ablation.build_tables(tiny_profile, scored, runs)
    files = ablation.write_tables(tiny_profile, built, tmp_path / "tables")
    md = files[4][0].read_text()
    assert "Crop size(16)" in md and "RANDOM VGG WEIGHTS in every run" in md and "DATA SUBSTITUTE" in md
