"""``paper_check``: the verdict against the paper's printed bicubic numbers, and the image-by-image scoring."""

from __future__ import annotations

import math

import pytest

from srgan_lib import evaluate, paper, paper_check
from srgan_lib.errors import ConfigError

#: The paper's bicubic (PSNR, SSIM), typed in from its Tables 1-2 (not read from the module under test).
PRINTED = {2: (28.3654, 0.8877), 4: (24.5025, 0.7408)}


def _results(offsets=None, names=paper_check.DIV2K_VALID_NAMES, scales=(2, 4)):
    """``{(scale, "paper"): EvalResult}`` at the printed numbers plus ``offsets[scale] = (dB, ssim)``."""
    out = {}
    for s in scales:
        d_psnr, d_ssim = (offsets or {}).get(s, (0.0, 0.0))
        values = {"psnr": PRINTED[s][0] + d_psnr, "ssim": PRINTED[s][1] + d_ssim}
        out[(s, "paper")] = evaluate.EvalResult(values, "paper", s, len(names), [{"name": n} for n in names], "pil")
    return out


def test_the_printed_numbers_are_the_tables():
    assert {s: paper.PAPER_TABLES[s]["bicubic"] for s in (2, 4)} == PRINTED


def test_the_paper_numbers_themselves_are_reproduced():
    check = paper_check.check_bicubic(_results())
    assert check.made and check.reproduced is True and check.reason == ""
    assert [s.scale for s in check.scales] == [2, 4]
    assert all(d == 0 for s in check.scales for d in s.diff.values())
    assert check.verdict.startswith("Reproduced")


@pytest.mark.parametrize("scale, offset, ok", [
    (2, (0.049, 0.0), True), (2, (0.051, 0.0), False), (4, (-0.051, 0.0), False), (4, (-0.049, 0.0019), True),
    (2, (0.0, -0.0021), False), (4, (0.0, 0.0021), False),
    (4, (26.66 - 24.5025, 0.8521 - 0.7408), False),  # the standard protocol's published DIV2K bicubic
])
def test_the_verdict_follows_the_tolerance(scale, offset, ok):
    check = paper_check.check_bicubic(_results({scale: offset}))
    assert check.made and check.reproduced is ok
    bad = [s.scale for s in check.scales if not s.reproduced]
    assert bad == ([] if ok else [scale])
    assert check.scales[(2, 4).index(scale)].diff["psnr"] == pytest.approx(offset[0])
    if not ok:
        assert check.verdict.startswith("Not reproduced") and f"x{scale}" in check.verdict


@pytest.mark.parametrize("kwargs, results, words", [
    ({"val_data": "samples"}, _results(), "'samples', not DIV2K's validation set"),
    ({"val_data": "/tmp/div2k_standin_valid"}, _results(), "not DIV2K's validation set"),
    ({}, _results(names=("img0.png", "img1.png")), "not DIV2K's 100 validation images"),
    ({}, _results(names=paper_check.DIV2K_VALID_NAMES[:2]), "only 2 of DIV2K's 100"),
    ({"max_side": 96}, _results(), "centre-cropped to 96"),
    ({}, _results(scales=(2,)), "not scored at x4"),
])
def test_no_check_on_other_images(kwargs, results, words):
    check = paper_check.check_bicubic(results, **kwargs)
    assert not check.made and check.reproduced is None and not check.scales
    assert words in check.reason and check.verdict.startswith("The check could not be made")


def test_div2k_is_known_by_name_or_by_its_folder(data_root):
    assert paper_check.is_div2k_valid("div2k")
    assert paper_check.is_div2k_valid(str(data_root / "DIV2K" / "DIV2K_valid_HR"))
    assert not paper_check.is_div2k_valid(str(data_root / "DIV2K" / "DIV2K_train_HR"))
    assert not paper_check.is_div2k_valid("set5")


def test_image_by_image_scoring_equals_the_whole_set(folder):
    ours = paper_check.score_bicubic(folder, limit=4, progress=False)
    whole = evaluate.score_bicubic(folder, limit=4)
    assert set(ours) == set(whole) == {(s, p) for s in (2, 4) for p in ("standard", "paper")}
    for key, res in whole.items():
        assert ours[key].values == res.values and ours[key].per_image == res.per_image
        assert (ours[key].count, ours[key].resize_method) == (4, res.resize_method)
    # the paper protocol's PSNR is that of the pooled MSE, worked out here by hand
    rows = ours[(4, "paper")].per_image
    assert ours[(4, "paper")].psnr == pytest.approx(-10 * math.log10(sum(r["mse"] for r in rows) / len(rows)))


def test_a_limit_below_one_is_refused(folder):
    with pytest.raises(ConfigError, match="limit=0"):
        paper_check.score_bicubic(folder, limit=0, progress=False)
