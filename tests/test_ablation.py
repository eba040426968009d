"""Tables 1-2 builder (hand-made results, the paper's printed numbers) and the grid's reuse of finished runs."""

from __future__ import annotations

import csv
import dataclasses
import math

import pytest

from srgan_lib import ablation, config, tables
from srgan_lib.evaluate import EvalResult


def _res(psnr: float, ssim: float, protocol: str = "paper", scale: int = 2) -> EvalResult:
    return EvalResult(psnr=psnr, ssim=ssim, protocol=protocol, scale=scale, count=1,
                      per_image=[{"name": "a", "psnr": psnr, "ssim": ssim}])


# The paper's Table 1 (x2), typed from the paper ("Upscaling using SRGAN", sec. 4.4).
PAPER_X2_LABELS = ["Crop size(88)", "Crop size(128)", "Crop size(168)", "Crop size(88) without tv loss",
                   "Crop size(128) without tv loss", "Crop size(168) without tv loss"]
PAPER_X2_SRGAN_PSNR = [29.0084, 29.0127, 29.0124, 28.9112, 28.9228, 28.9172]
PAPER_X4_SRGAN_SSIM = [0.7541, 0.7558, 0.7554, 0.7482, 0.7494, 0.7491]


def _one_seed_runs(base_psnr=29.5):
    return {(c, tv): [_res(base_psnr + i * 0.01, 0.9)] for i, (c, tv) in
            enumerate((c, tv) for tv in (True, False) for c in (88, 128, 168))}


def test_layout_follows_the_paper_with_its_numbers_beside_ours():
    table = tables.build_table(2, "paper", bicubic=_res(30.0, 0.9), runs=_one_seed_runs())
    assert [r["label"] for r in table.rows] == PAPER_X2_LABELS
    assert [r["paper_srgan_psnr"] for r in table.rows] == PAPER_X2_SRGAN_PSNR
    # bicubic (ours and the paper's 28.3654 / 0.8877) only on the rows with TV, as printed
    assert [r["paper_bicubic_psnr"] for r in table.rows] == [28.3654] * 3 + [None] * 3
    assert [r["bicubic_psnr"] is not None for r in table.rows] == [True] * 3 + [False] * 3
    md = tables.to_markdown(table)
    # ours | paper | ours - paper, for bicubic PSNR, bicubic SSIM, SRGAN PSNR, SRGAN SSIM:
    # 30 - 28.3654 = +1.63; 0.9 - 0.8877 = +0.0123; 29.5 - 29.0084 = +0.49; 0.9 - 0.8938 = +0.0062
    assert ("| Crop size(88) | 30.00 | 28.3654 | +1.63 | 0.9000 | 0.8877 | +0.0123 | "
            "29.50 | 29.0084 | +0.49 | 0.9000 | 0.8938 | +0.0062 |") in md
    # the last row: 29.55 vs 28.9172 -> +0.63, no bicubic cells
    assert "| Crop size(168) without tv loss |  |  |  |  |  |  | 29.55 | 28.9172 | +0.63 |" in md
    assert "Table 1" in md and "protocol `paper`" in md


def test_x4_uses_table_2():
    table = tables.build_table(4, "standard", bicubic=_res(26.0, 0.8, scale=4))
    assert [r["paper_srgan_ssim"] for r in table.rows] == PAPER_X4_SRGAN_SSIM
    assert table.rows[0]["paper_bicubic_psnr"] == 24.5025
    assert all(r["srgan_psnr"] is None for r in table.rows)  # a bicubic-only table leaves SRGAN empty
    assert "Table 2" in table.title


def test_two_seeds_give_mean_std_and_a_tv_note():
    runs = {(88, True): [_res(29.0, 0.90), _res(29.2, 0.92)], (88, False): [_res(28.0, 0.91), _res(28.1, 0.91)],
            (128, True): [_res(29.00, 0.9), _res(29.10, 0.9)], (128, False): [_res(29.02, 0.9), _res(29.06, 0.9)]}
    table = tables.build_table(2, "paper", runs=runs, crop_sizes=(88, 128))
    row = table.rows[0]
    assert row["srgan_psnr"].mean == pytest.approx(29.1)
    assert row["srgan_psnr"].std == pytest.approx(math.sqrt(0.02))  # sample std of 29.0, 29.2 = 0.1414
    md = tables.to_markdown(table)
    assert "29.10 ± 0.14" in md
    note88, note128 = table.notes
    # 88: 29.1 - 28.05 = +1.05 dB against a pooled std sqrt((0.02 + 0.005) / 2) = 0.112
    assert "crop 88" in note88 and "+1.050 dB exceeds" in note88 and "0.112" in note88
    # 128: 29.05 - 29.04 = +0.01 dB against sqrt((0.005 + 0.0008) / 2) = 0.054
    assert "crop 128" in note128 and "+0.010 dB does not exceed" in note128
    rows = tables.csv_rows(table)
    assert rows[0]["seeds"] == 2 and float(rows[0]["srgan_psnr_std"]) == pytest.approx(0.141421, abs=1e-6)
    assert float(rows[0]["srgan_psnr_diff"]) == pytest.approx(29.1 - 29.0084)


def test_one_seed_has_no_tv_note_and_no_std():
    table = tables.build_table(4, "paper", runs={(88, True): [_res(25, 0.8)], (88, False): [_res(24, 0.8)]})
    assert table.notes == []
    assert "±" not in tables.to_markdown(table)


def test_footnote_names_random_vgg_and_substitute_data():
    notes = tables.footnote("quick", "paper", "samples", 2, train_data="samples",
                            vgg_weights_used={"srgan_x2_c88_tv1_s0": "random", "srgan_x2_c88_tv0_s0": "random"})
    text = " ".join(notes)
    assert "RANDOM VGG WEIGHTS in every run" in text
    assert "DATA SUBSTITUTE" in text and "`samples`" in text
    assert "Profile `quick`" in text and "protocol `paper`" in text
    clean = " ".join(tables.footnote("paper", "standard", "div2k", 100, "div2k", {"a": "imagenet"}))
    assert "RANDOM" not in clean and "SUBSTITUTE" not in clean
    mixed = " ".join(tables.footnote("quick", "paper", "samples", 2, "samples", {"a": "random", "b": "unknown"}))
    assert "RANDOM VGG WEIGHTS in a:" in mixed and "UNKNOWN (no meta.json) for b" in mixed


def test_write_tables_writes_markdown_and_csv(tmp_path):
    built = [tables.build_table(s, p, bicubic=_res(30.0, 0.9), runs=_one_seed_runs(), footnote=["note"])
             for s in (2, 4) for p in ("standard", "paper")]
    files = tables.write_tables(built, tmp_path)
    assert sorted(p.name for pair in files.values() for p in pair) == [
        "table1_x2.csv", "table1_x2.md", "table2_x4.csv", "table2_x4.md"]
    md = (tmp_path / "table1_x2.md").read_text()
    assert md.count("### Table 1") == 2 and "<sup>1</sup> note" in md
    with open(tmp_path / "table2_x4.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and {r["protocol"] for r in rows} == {"standard", "paper"}
    assert float(rows[0]["srgan_psnr_paper"]) == 25.0117


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
