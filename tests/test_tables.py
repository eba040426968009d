"""Tables 1-2 from hand-made results with known numbers: layout, the paper's values and gains beside ours,
mean ± std over seeds, paired differences (planted and absent), Markdown and CSV files, bicubic-only tables."""

from __future__ import annotations

import csv
import math
import re

import numpy as np
import pytest

from srgan_lib import tables
from srgan_lib.evaluate import EvalResult
from srgan_lib.metrics import METRICS
from srgan_lib.paper import PAPER_METRICS

#: t_{0.975} with 2 degrees of freedom, from a printed t-table (4.303): the 95 % interval of 3 seeds
T_975_2 = 4.3026527297


def _res(psnr, ssim=0.9) -> EvalResult:
    """A hand-made result whose per-image PSNR is ``psnr`` (a list; a number is two images at ``psnr -+ 0.5``).

    The other metrics are the same on every image (SSIM ``ssim``, texture 0.5, artifact 1.0); the set's
    value of each metric is the mean over the images. The tables read ``values`` and ``per_image`` only.
    """
    per = [psnr - 0.5, psnr + 0.5] if np.isscalar(psnr) else list(psnr)
    rows = [{"name": f"img{i}.png", **{m: 0.5 if m == "texture" else 1.0 for m in METRICS}, "psnr": p, "ssim": ssim}
            for i, p in enumerate(per)]
    return EvalResult({m: float(np.mean([r[m] for r in rows])) for m in METRICS}, "standard", 2, len(rows), rows)


# The paper's Tables 1 (x2) and 2 (x4), typed from the paper ("Upscaling using SRGAN", sec. 4.4).
LABELS = ["Crop size(88)", "Crop size(128)", "Crop size(168)", "Crop size(88) without tv loss",
          "Crop size(128) without tv loss", "Crop size(168) without tv loss"]
PAPER_X2_PSNR = [29.0084, 29.0127, 29.0124, 28.9112, 28.9228, 28.9172]
PAPER_X4_SSIM = [0.7541, 0.7558, 0.7554, 0.7482, 0.7494, 0.7491]
CELLS = [(c, tv) for tv in (True, False) for c in (88, 128, 168)]


def _two_seed_table(comparable: bool = False):
    """x2: bicubic 29.0 dB / 0.88; SRResNet 29.3 (both seeds); cell k at 29.0 + k/100 (seed 0) and 29.2 + k/100."""
    runs = {cell: {0: _res(29.0 + k / 100), 1: _res(29.2 + k / 100)} for k, cell in enumerate(CELLS)}
    return tables.build_table(2, "standard", bicubic=_res(29.0, 0.88), runs=runs, footnote=["a note"],
                              control={0: _res(29.3), 1: _res(29.3)}, comparable=comparable)


def test_rows_bicubic_control_then_the_papers_rows_with_its_numbers():
    table = _two_seed_table()
    assert [r["label"] for r in table.rows] == ["Bicubic", "SRResNet, MSE only, crop 88", *LABELS]
    assert [r["kind"] for r in table.rows] == ["bicubic", "control"] + ["srgan"] * 6
    assert [(r["crop_size"], r["use_tv"]) for r in table.rows[2:]] == CELLS
    assert [r["paper_psnr"] for r in table.rows] == [28.3654, None, *PAPER_X2_PSNR]
    # the paper's gains: its SRGAN rows minus its bicubic 28.3654 dB / 0.8877
    assert [r["paper_gain_psnr"] for r in table.rows[2:]] == pytest.approx([p - 28.3654 for p in PAPER_X2_PSNR])
    assert table.rows[2]["paper_gain_ssim"] == pytest.approx(0.8938 - 0.8877)
    assert table.rows[0]["paper_gain_psnr"] is None and table.rows[1]["paper_psnr"] is None
    # metrics the paper did not print have no paper values
    assert all(r[f"paper_{m}"] is None for r in table.rows for m in METRICS if m not in PAPER_METRICS)
    assert table.title == "Table 1: x2 upsampling, protocol `standard`"
    x4 = tables.build_table(4, "standard")  # nothing of ours: the paper's rows alone, from Table 2
    assert [r["paper_ssim"] for r in x4.rows] == PAPER_X4_SSIM and "Table 2" in x4.title
    assert all(r["ours_psnr"] is None and r["gain_psnr"] is None for r in x4.rows) and x4.differences == []


def test_mean_std_over_seeds_and_gains_over_bicubic():
    row = _two_seed_table().rows[2]  # crop 88 with TV: 29.0 and 29.2 against bicubic 29.0
    assert row["seeds"] == 2
    assert row["ours_psnr"].mean == pytest.approx(29.1) and row["ours_psnr"].std == pytest.approx(math.sqrt(0.02))
    assert row["gain_psnr"].values == pytest.approx((0.0, 0.2))
    assert row["gain_ssim"].mean == pytest.approx(0.02) and row["gain_ssim"].std == 0
    bicubic, control = _two_seed_table().rows[:2]
    assert bicubic["gain_psnr"] is None and bicubic["ours_psnr"].values == (29.0,)
    assert control["gain_psnr"].values == pytest.approx((0.3, 0.3))


def test_markdown_puts_the_papers_values_and_gains_beside_ours():
    md = tables.to_markdown(_two_seed_table())
    header = next(line for line in md.splitlines() if line.startswith("| | seeds |"))
    others = "".join(f" {METRICS[m].label} (ours) | {METRICS[m].label} − bicubic (ours) |"
                     for m in METRICS if m not in PAPER_METRICS)
    assert header == ("| | seeds | PSNR (ours) | PSNR − bicubic (ours) | PSNR (paper) | PSNR − bicubic (paper) | "
                      "SSIM (ours) | SSIM − bicubic (ours) | SSIM (paper) | SSIM − bicubic (paper) |" + others)
    assert "ours − paper" not in md  # not the paper's data: absolute values do not compare
    # 29.1 ± 0.14, gain +0.1 ± 0.14; paper 29.0084, its gain 29.0084 - 28.3654 = +0.64;
    # SSIM 0.9 (gain +0.02); paper 0.8938, gain 0.8938 - 0.8877 = +0.0061
    assert ("| Crop size(88) | 2 | 29.10 ± 0.14 | +0.10 ± 0.14 | 29.0084 | +0.64 | 0.9000 ± 0.0000 | "
            "+0.0200 ± 0.0000 | 0.8938 | +0.0061 |") in md
    assert "| Bicubic | – | 29.00 |  | 28.3654 |  | 0.8800 |  | 0.8877 |  |" in md
    assert "| SRResNet, MSE only, crop 88 | 2 | 29.30 ± 0.00 | +0.30 ± 0.00 |  |  |" in md
    assert "<sup>1</sup> a note" in md


def test_ours_minus_paper_only_when_the_data_and_protocol_are_the_papers():
    md = tables.to_markdown(_two_seed_table(comparable=True))
    # + 29.1 - 29.0084 = +0.09 after the paper's gain; SSIM 0.9 - 0.8938 = +0.0062
    assert ("| Crop size(88) | 2 | 29.10 ± 0.14 | +0.10 ± 0.14 | 29.0084 | +0.64 | +0.09 | 0.9000 ± 0.0000 | "
            "+0.0200 ± 0.0000 | 0.8938 | +0.0061 | +0.0062 |") in md
    assert "| PSNR: ours − paper |" in md and "| SSIM: ours − paper |" in md
    assert "| Bicubic | – | 29.00 |  | 28.3654 |  | +0.63 |" in md  # 29.0 - 28.3654
    assert "| SRResNet, MSE only, crop 88 | 2 | 29.30 ± 0.00 | +0.30 ± 0.00 |  |  |  |" in md  # no paper value


def test_one_seed_shows_no_std():
    table = tables.build_table(4, "standard", bicubic=_res(25.0), runs={(88, True): [_res(25.5)],
                                                                       (88, False): [_res(25.25)]}, crop_sizes=(88,))
    md = tables.to_markdown(table)
    assert "±" not in md.split("| Paired difference")[0]
    assert "| Crop size(88) | 1 | 25.50 | +0.50 | 25.0117 | +0.51 |" in md  # 25.0117 - 24.5025 = 0.5092


# --- paired differences: planted, absent, paired by seed

BASE = np.array([25.0, 27.0, 29.0, 31.0])  #: the images' PSNR (dB): a large image-to-image spread
OFFSET = {0: 0.0, 1: 2.0, 2: -1.0}  #: a large seed-to-seed spread, shared by every cell of a seed
EPS = np.array([0.01, -0.01, 0.03, -0.03])  #: image-level noise of TV on - off (mean 0)
DELTA = {0: 0.0, 1: 0.02, 2: -0.02}  #: seed-level noise of TV on - off
NULL = {0: 0.1, 1: -0.05, 2: -0.05}  #: crop 128 - 88 without TV: per seed, averaging exactly 0


def _planted_runs(seed_order=(0, 1, 2)):
    """TV on = TV off + 0.5 dB (planted) at crop 88; crop 128 without TV = crop 88 without TV + noise only."""
    off88 = {s: _res(BASE + OFFSET[s]) for s in seed_order}
    on88 = {s: _res(BASE + OFFSET[s] + 0.5 + DELTA[s] + EPS) for s in seed_order}
    off128 = {s: _res(BASE + OFFSET[s] + NULL[s]) for s in seed_order}
    return {(88, True): on88, (88, False): off88, (128, False): off128}


def _diffs(table) -> dict:
    return {d["label"]: d for d in table.differences}


def test_difference_labels_follow_the_rows():
    table = _two_seed_table()
    assert list(_diffs(table)) == [
        "SRGAN (crop 88) - bicubic", "SRGAN - SRResNet (crop 88)",
        "TV on - off, crop 88", "TV on - off, crop 128", "TV on - off, crop 168",
        "crop 128 - 88", "crop 168 - 88", "crop 168 - 128",
        "crop 128 - 88, without TV", "crop 168 - 88, without TV", "crop 168 - 128, without TV"]


def test_a_planted_difference_is_distinguishable_and_no_difference_is_not():
    bicubic = _res(BASE - 1.0)
    control = {s: _res(BASE + OFFSET[s] + 0.3) for s in (0, 1, 2)}
    table = tables.build_table(2, "standard", bicubic, _planted_runs(), crop_sizes=(88, 128), control=control)
    diffs = _diffs(table)
    tv = diffs["TV on - off, crop 88"]["diff_psnr"]
    # per seed, the image mean of d[s, i] = 0.5 + DELTA[s] + EPS[i]: 0.50, 0.52, 0.48 (the seed offsets cancel)
    assert tv.per_seed == pytest.approx((0.5, 0.52, 0.48), abs=1e-12) and tv.images == 4 and tv.over == "seeds"
    # mean 0.5, std 0.02 over 3 seeds: half-width t_{0.975,2} * 0.02 / sqrt(3) = 0.0497
    half = T_975_2 * 0.02 / math.sqrt(3)
    assert (tv.mean, tv.low, tv.high) == pytest.approx((0.5, 0.5 - half, 0.5 + half), abs=1e-9)
    assert tv.distinguishable and diffs["TV on - off, crop 88"]["paper_psnr"] == pytest.approx(29.0084 - 28.9112)
    null = diffs["crop 128 - 88, without TV"]["diff_psnr"]
    half = T_975_2 * math.sqrt(0.0075) / math.sqrt(3)  # std of (0.1, -0.05, -0.05) = sqrt(0.015 / 2)
    assert null.per_seed == pytest.approx((0.1, -0.05, -0.05), abs=1e-12)
    assert (null.mean, null.low, null.high) == pytest.approx((0.0, -half, half), abs=1e-9)
    assert not null.distinguishable
    assert diffs["crop 128 - 88, without TV"]["paper_psnr"] == pytest.approx(28.9228 - 28.9112)
    # against bicubic (one result, the same for every seed): 1.5 + OFFSET[s] + DELTA[s]
    bic = diffs["SRGAN (crop 88) - bicubic"]
    assert bic["diff_psnr"].per_seed == pytest.approx((1.5, 3.52, 0.48), abs=1e-12)
    assert bic["paper_psnr"] == pytest.approx(29.0084 - 28.3654)
    # against the MSE-only control: 0.2 + DELTA[s]; the paper has no such row
    ctl = diffs["SRGAN - SRResNet (crop 88)"]
    assert ctl["diff_psnr"].per_seed == pytest.approx((0.2, 0.22, 0.18), abs=1e-12) and ctl["paper_psnr"] is None
    # SSIM is the same everywhere: a difference of exactly 0 is never distinguishable
    assert (tv_ssim := diffs["TV on - off, crop 88"]["diff_ssim"]).mean == 0 and not tv_ssim.distinguishable
    # a cell without runs has no difference row (crop 128 with TV was not trained)
    assert "TV on - off, crop 128" not in diffs and "crop 128 - 88" not in diffs


def test_seeds_are_paired_by_their_key_not_their_position():
    runs = _planted_runs()
    runs[(88, True)] = {s: runs[(88, True)][s] for s in (2, 0, 1)}  # seeds 0, 1, 2 in another order
    runs[(88, False)] = {s: runs[(88, False)][s] for s in (1, 2)}
    runs[(88, False)][3] = _res(BASE + 10.0)  # seeds 1, 2, 3: only 1 and 2 are in both cells
    table = tables.build_table(2, "standard", runs=runs, crop_sizes=(88, 128))
    tv = _diffs(table)["TV on - off, crop 88"]["diff_psnr"]
    # paired by position (0 with 1, 1 with 2, ...) the seed offsets (0, 2, -1, 10) would not cancel
    assert tv.per_seed == pytest.approx((0.52, 0.48), abs=1e-12) and tv.seeds == 2
    seeds = {r["label"]: r["seeds"] for r in table.rows}  # the rows themselves show every seed they have
    assert (seeds["Crop size(88)"], seeds["Crop size(88) without tv loss"]) == (3, 3)


def test_one_seed_gives_an_interval_over_images():
    runs = {cell: {0: r[0]} for cell, r in _planted_runs().items()}
    tv = _diffs(tables.build_table(2, "standard", runs=runs, crop_sizes=(88, 128)))["TV on - off, crop 88"]["diff_psnr"]
    assert tv.over == "images" and tv.seeds == 1 and tv.mean == pytest.approx(0.5)


def test_markdown_and_csv_files_carry_values_and_differences(tmp_path):
    built = [tables.build_table(s, p, _res(BASE - 1.0), _planted_runs(), footnote=["note"], crop_sizes=(88, 128))
             for s in (2, 4) for p in ("standard", "paper")]
    files = tables.write_tables(built, tmp_path, heading="Profile `test`.")
    assert {s: (md.name, c.name) for s, (md, c) in files.items()} == {
        2: ("table1_x2.md", "table1_x2.csv"), 4: ("table2_x4.md", "table2_x4.csv")}
    md = (tmp_path / "table1_x2.md").read_text()
    assert md.startswith("# Table 1 (x2)\n\nProfile `test`.\n")
    assert md.count("### Table 1: x2 upsampling") == 2 and md.count("<sup>1</sup> note") == 2
    assert "| Paired difference | PSNR [95 % CI] | distinguishable? | PSNR (paper) |" in md
    half = T_975_2 * 0.02 / math.sqrt(3)
    assert f"| TV on - off, crop 88 | +0.500 [{0.5 - half:+.3f}, {0.5 + half:+.3f}] | **yes** | +0.097 |" in md
    # mean 0 (to rounding: either sign), not distinguishable, the paper's 28.9228 - 28.9112
    assert re.search(r"\| crop 128 - 88, without TV \| [+-]0\.000 \[-0\.215, \+0\.215\] \| no \| \+0\.012 \|", md)
    with open(tmp_path / "table1_x2.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == tables.csv_columns()
    assert {r["protocol"] for r in rows} == {"standard", "paper"}
    std = [r for r in rows if r["protocol"] == "standard"]
    values = {r["row"]: r for r in std if r["part"] == "value"}
    diffs = {r["row"]: r for r in std if r["part"] == "difference"}
    assert len(values) == 1 + 4 and len(diffs) == len(built[0].differences)
    cell = values["Crop size(88)"]  # BASE + OFFSET + 0.5 + DELTA: set means 28.5, 30.52, 27.48
    assert (cell["seeds"], cell["crop_size"], cell["use_tv"]) == ("3", "88", "1")
    assert float(cell["ours_psnr"]) == pytest.approx(np.mean([28.5, 30.52, 27.48]), abs=1e-6)
    assert float(cell["ours_psnr_std"]) == pytest.approx(np.std([28.5, 30.52, 27.48], ddof=1), abs=1e-6)
    assert float(cell["gain_psnr"]) == pytest.approx(np.mean([28.5, 30.52, 27.48]) - 27.0, abs=1e-6)
    assert (cell["paper_psnr"], cell["paper_gain_psnr"]) == ("29.008400", f"{29.0084 - 28.3654:.6f}")
    assert values["Bicubic"]["gain_psnr"] == "" and values["Bicubic"]["use_tv"] == ""
    tv = diffs["TV on - off, crop 88"]
    assert (tv["ours_psnr"], tv["low_psnr"], tv["high_psnr"]) == ("0.500000", f"{0.5 - half:.6f}", f"{0.5 + half:.6f}")
    assert (tv["distinguishable_psnr"], tv["distinguishable_ssim"], tv["seeds"]) == ("1", "0", "3")
    assert tv["paper_psnr"] == f"{29.0084 - 28.9112:.6f}" and tv["paper_texture"] == ""


def test_a_bicubic_only_table_and_its_files(tmp_path):
    table = tables.build_table(4, "standard", bicubic=_res(25.0, 0.7))
    assert [(r["label"], r["kind"]) for r in table.rows] == [("Bicubic", "bicubic")]
    assert table.rows[0]["paper_psnr"] == 24.5025 and table.differences == []
    assert "Paired difference" not in tables.to_markdown(table)
    results = {(s, p): _res(30.0 - s) for s in (2, 4) for p in ("standard", "paper")}
    files = tables.write_bicubic_tables(results, "quick", "set5", out_dir=tmp_path)
    assert sorted(p.name for pair in files.values() for p in pair) == [
        "table1_x2_bicubic.csv", "table1_x2_bicubic.md", "table2_x4_bicubic.csv", "table2_x4_bicubic.md"]
    md = (tmp_path / "table2_x4_bicubic.md").read_text()
    assert "Bicubic rows only" in md and md.count("| Bicubic | – | 26.00 |") == 2 and "ours − paper" not in md
    assert "DATA SUBSTITUTE" in md and "validated on `set5`" in md
    with open(tmp_path / "table2_x4_bicubic.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["protocol"], r["row"], r["ours_psnr"], r["paper_psnr"]) for r in rows] == [
        ("standard", "Bicubic", "26.000000", "24.502500"), ("paper", "Bicubic", "26.000000", "24.502500")]
    # on DIV2K under the paper's protocol the absolute values compare with the paper's: that section only
    tables.write_bicubic_tables(results, "paper", "div2k", out_dir=tmp_path / "div2k")
    standard, paper = (tmp_path / "div2k" / "table2_x4_bicubic.md").read_text().split("### Table 2")[1:]
    assert "ours − paper" not in standard and "| Bicubic | – | 26.00 |  | 24.5025 |  | +1.50 |" in paper


def test_a_scale_without_a_paper_table_leaves_the_paper_columns_empty():
    table = tables.build_table(8, "standard", bicubic=_res(21.0, 0.6), runs={(88, True): [_res(21.5, 0.6)]},
                               crop_sizes=(88,))
    assert all(r[f"paper_{m}"] is None and r[f"paper_gain_{m}"] is None for r in table.rows for m in METRICS)
    md = tables.to_markdown(table)
    assert "### Table: x8 upsampling, protocol `standard`" in md
    assert "| Crop size(88) | 1 | 21.50 | +0.50 |  |  | 0.6000 | +0.0000 |  |  |" in md
    assert tables.csv_rows(table)[0]["table"] == ""


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
    assert tables.footnote("q", "standard", "set5", 5, schedule="Training: x.")[-1] == "Training: x."
