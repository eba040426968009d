"""Tables 1-2 from hand-made results with known numbers: the paper's values beside ours, differences, formatting."""

from __future__ import annotations

import csv
import math

import pytest

from srgan_lib import tables
from srgan_lib.evaluate import EvalResult


def _res(psnr: float, ssim: float, protocol: str = "paper", scale: int = 2) -> EvalResult:
    return EvalResult(values={"psnr": psnr, "ssim": ssim}, protocol=protocol, scale=scale, count=1,
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


def test_header_has_ours_paper_and_difference_per_metric():
    md = tables.to_markdown(tables.build_table(2, "standard", bicubic=_res(30.0, 0.9)))
    header = next(line for line in md.splitlines() if line.startswith("|  |"))
    assert header == ("|  | Bicubic PSNR (ours) | (paper) | Δ | Bicubic SSIM (ours) | (paper) | Δ | "
                      "SRGAN PSNR (ours) | (paper) | Δ | SRGAN SSIM (ours) | (paper) | Δ |")
    assert md.splitlines()[3] == "| --- " + "| ---: " * 12 + "|"


def test_csv_rows_hold_plain_numbers():
    table = tables.build_table(2, "standard", bicubic=_res(30.0, 0.9), runs={(88, True): [_res(29.0, 0.88)]})
    assert tables.csv_columns() == (
        "table", "scale", "protocol", "row", "crop_size", "use_tv", "seeds",
        "bicubic_psnr", "bicubic_psnr_std", "bicubic_psnr_paper", "bicubic_psnr_diff",
        "bicubic_ssim", "bicubic_ssim_std", "bicubic_ssim_paper", "bicubic_ssim_diff",
        "srgan_psnr", "srgan_psnr_std", "srgan_psnr_paper", "srgan_psnr_diff",
        "srgan_ssim", "srgan_ssim_std", "srgan_ssim_paper", "srgan_ssim_diff")
    first, *_, last = tables.csv_rows(table)
    # 30 - 28.3654 = 1.6346; 0.9 - 0.8877 = 0.0123; 29 - 29.0084 = -0.0084; 0.88 - 0.8938 = -0.0138
    assert first == {"table": "Table 1", "scale": 2, "protocol": "standard", "row": "Crop size(88)", "crop_size": 88,
                     "use_tv": 1, "seeds": 1,
                     "bicubic_psnr": "30.000000", "bicubic_psnr_std": "0.000000", "bicubic_psnr_paper": "28.3654",
                     "bicubic_psnr_diff": "1.634600", "bicubic_ssim": "0.900000", "bicubic_ssim_std": "0.000000",
                     "bicubic_ssim_paper": "0.8877", "bicubic_ssim_diff": "0.012300",
                     "srgan_psnr": "29.000000", "srgan_psnr_std": "0.000000", "srgan_psnr_paper": "29.0084",
                     "srgan_psnr_diff": "-0.008400", "srgan_ssim": "0.880000", "srgan_ssim_std": "0.000000",
                     "srgan_ssim_paper": "0.8938", "srgan_ssim_diff": "-0.013800"}
    # no run and no bicubic on a row without TV: only the paper's SRGAN numbers (28.9172 / 0.8901)
    assert (last["row"], last["seeds"], last["srgan_psnr"], last["srgan_psnr_paper"], last["bicubic_psnr_paper"]) == (
        "Crop size(168) without tv loss", "", "", "28.9172", "")
    assert last["srgan_ssim_paper"] == "0.8901" and last["srgan_ssim_diff"] == ""


def test_a_scale_without_a_paper_table_leaves_the_paper_columns_empty():
    table = tables.build_table(3, "standard", bicubic=_res(31.0, 0.91, scale=3))
    assert all(r[f"paper_{k}_{m}"] is None for r in table.rows for k in ("bicubic", "srgan") for m in ("psnr", "ssim"))
    md = tables.to_markdown(table)
    assert "### Table: x3 upsampling, protocol `standard`" in md
    assert "| Crop size(88) | 31.00 |  |  | 0.9100 |  |  |" in md
    assert tables.csv_rows(table)[0]["table"] == ""


def test_tv_note_gives_each_metric_with_its_unit_and_digits():
    runs = {(88, True): [_res(29.0, 0.900), _res(29.4, 0.910)], (88, False): [_res(28.9, 0.904), _res(28.9, 0.904)]}
    (note,) = tables.build_table(4, "standard", runs=runs, crop_sizes=(88,)).notes
    # PSNR: 29.2 - 28.9 = +0.3 dB against the pooled std sqrt((0.08 + 0) / 2) = 0.2 (one decimal more than the table)
    # SSIM: 0.905 - 0.904 = +0.001 against sqrt((0.00005 + 0) / 2) = 0.005
    assert note == ("x4, crop 88: TV on - off (2 vs 2 seeds): PSNR +0.300 dB exceeds the seed-to-seed std 0.200 dB; "
                    "SSIM +0.00100 does not exceed the seed-to-seed std 0.00500.")
