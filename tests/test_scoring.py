"""srgan_lib.scoring: each run's scores cached in its folder (hit, invalidation, key), the evaluation CSV files,
and the profiles' validation sets."""

from __future__ import annotations

import csv
import dataclasses
import json
import os

import pytest
import torch
from conftest import noise_folder

from srgan_lib import config, datasets, images, models, scoring
from srgan_lib.checkpoint import save_generator
from srgan_lib.evaluate import EvalResult
from srgan_lib.metrics import METRICS


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def profile(tmp_path):
    """A profile validating on two small images of seeded noise, x4 only."""
    val = noise_folder(tmp_path / "val", 2, 32, 36, 0)
    base = dataclasses.replace(config.get_profile("smoke").base, val_data=str(val), val_limit=None, val_max_side=None,
                               device="cpu")
    return config.Profile("smoke", "test", base, scales=(4,), crop_sizes=(16,), seeds=(0,), study_crop=16)


def _save_run(run_dir, cfg, seed: int) -> None:
    """A run folder as train() leaves it, for scoring: config.json and a generator.pt of random weights."""
    torch.manual_seed(seed)
    gen = models.Generator(cfg.scale, cfg.num_feat, cfg.num_block, cfg.upsample_skip)
    with torch.no_grad():
        for p in gen.parameters():  # far from bicubic, so that each run scores its own numbers
            p.add_(0.05 * torch.randn_like(p))
    save_generator(run_dir / "generator.pt", gen, cfg, 3)
    (run_dir / "config.json").write_text(cfg.to_json())


@pytest.fixture
def runs(profile, tmp_path):
    out = {}
    for k, use_tv in enumerate((True, False)):
        cfg = profile.config(scale=4, crop_size=16, use_tv=use_tv, seed=0)
        name = f"srgan_x4_c16_tv{int(use_tv)}_s0"
        (tmp_path / "runs" / name).mkdir(parents=True)
        _save_run(tmp_path / "runs" / name, cfg, k)
        out[name] = tmp_path / "runs" / name
    return out


@pytest.fixture
def calls(monkeypatch):
    """What each score_runs call loads and scores: ``{"loaded": [run names], "scored": [method sets]}``."""
    seen = {"loaded": [], "scored": []}
    load, evaluate = scoring.load_generator, scoring.evaluate_methods

    def counting_load(path, *args, **kwargs):
        seen["loaded"].append(os.path.basename(path))
        return load(path, *args, **kwargs)

    def counting_evaluate(folder, scale, methods, *args, **kwargs):
        seen["scored"].append(set(methods))
        return evaluate(folder, scale, methods, *args, **kwargs)

    monkeypatch.setattr(scoring, "load_generator", counting_load)
    monkeypatch.setattr(scoring, "evaluate_methods", counting_evaluate)
    return seen


def _by_method(scored) -> dict:
    return {(s.protocol, s.method): s.result for s in scored}


def test_scores_are_cached_per_run_and_read_back_unchanged(profile, runs, calls, tmp_path):
    first = scoring.score_runs(profile, runs, out_dir=tmp_path / "eval", device="cpu", progress=False)
    assert sorted(calls["loaded"]) == sorted(runs) and calls["scored"] == [{"bicubic", *runs}]
    assert sorted(_by_method(first)) == sorted((p, m) for p in ("standard", "paper") for m in ("bicubic", *runs))
    for d in runs.values():
        stored = json.loads((d / scoring.SCORES).read_text())
        assert len(stored["scores"]) == 2  # one entry per protocol
    calls["loaded"].clear(), calls["scored"].clear()
    again = scoring.score_runs(profile, runs, out_dir=tmp_path / "eval", device="cpu", progress=False)
    assert calls["loaded"] == [] and calls["scored"] == []  # no generator loaded, nothing scored (bicubic cached too)
    assert (tmp_path / "eval" / scoring.BICUBIC_SCORES).is_file()
    a, b = _by_method(first), _by_method(again)
    assert a.keys() == b.keys()
    for key in a:  # read back exactly (JSON keeps a float's every digit)
        assert (b[key].values, b[key].per_image, b[key].count) == (a[key].values, a[key].per_image, a[key].count)
    assert a[("standard", "srgan_x4_c16_tv1_s0")].values != a[("standard", "srgan_x4_c16_tv0_s0")].values
    assert [s.cfg for s in again if s.method in runs] == [config.TrainConfig.from_dict(
        json.loads((runs[s.method] / "config.json").read_text())) for s in again if s.method in runs]


def test_a_new_generator_is_scored_again(profile, runs, calls, tmp_path):
    before = _by_method(scoring.score_runs(profile, runs, out_dir=tmp_path / "eval", device="cpu", progress=False))
    calls["loaded"].clear(), calls["scored"].clear()
    changed = runs["srgan_x4_c16_tv1_s0"]
    stamp = (changed / "generator.pt").stat().st_mtime_ns
    _save_run(changed, profile.config(scale=4, crop_size=16, seed=0), seed=7)  # retrained: other weights
    os.utime(changed / "generator.pt", ns=(stamp + 10**9, stamp + 10**9))  # a later time, whatever the clock's grain
    after = _by_method(scoring.score_runs(profile, runs, out_dir=tmp_path / "eval", device="cpu", progress=False))
    assert calls["loaded"] == ["srgan_x4_c16_tv1_s0"]  # the other run's scores still hold
    assert after[("standard", "srgan_x4_c16_tv1_s0")].values != before[("standard", "srgan_x4_c16_tv1_s0")].values
    assert after[("standard", "srgan_x4_c16_tv0_s0")].values == before[("standard", "srgan_x4_c16_tv0_s0")].values


def test_the_cache_is_kept_per_validation_set_and_protocol(profile, runs, calls, tmp_path):
    scoring.score_runs(profile, runs, protocols=("standard",), out_dir=tmp_path / "eval", device="cpu", progress=False)
    calls["loaded"].clear()
    # the other protocol is not cached yet
    scoring.score_runs(profile, runs, out_dir=tmp_path / "eval", device="cpu", progress=False)
    assert sorted(calls["loaded"]) == sorted(runs)
    calls["loaded"].clear()
    one = dataclasses.replace(profile, base=dataclasses.replace(profile.base, val_limit=1))  # another set
    scored = scoring.score_runs(one, runs, out_dir=tmp_path / "eval", device="cpu", progress=False)
    assert sorted(calls["loaded"]) == sorted(runs) and {s.result.count for s in scored} == {1}
    calls["loaded"].clear()
    scored = scoring.score_runs(profile, runs, out_dir=tmp_path / "eval", device="cpu", progress=False)
    assert calls["loaded"] == [] and {s.result.count for s in scored} == {2}  # both sets' scores are kept


def test_score_runs_writes_the_evaluation_files(profile, runs, tmp_path):
    scoring.score_runs(profile, runs, protocols=("standard",), out_dir=tmp_path / "eval", device="cpu",
                       progress=False)
    rows = _rows(tmp_path / "eval" / "per_image_standard.csv")
    assert [(r["method"], r["image"]) for r in rows] == [
        (m, f"img{i}.png") for m in ("bicubic", *runs) for i in range(2)]
    summary = _rows(tmp_path / "eval" / "summary.csv")
    assert [(r["method"], r["count"], r["tv_weight"]) for r in summary] == [
        ("bicubic", "2", ""), ("srgan_x4_c16_tv1_s0", "2", "4e-08"), ("srgan_x4_c16_tv0_s0", "2", "0")]


def test_eval_csv_has_the_run_axes_and_a_column_per_metric(tmp_path):
    prof = config.get_profile("smoke")
    per_image = [{"name": "a.png", "mse": 0.01, **{m: 0.5 for m in METRICS}, "psnr": 20.0},
                 {"name": "b.png", "mse": 0.0001, **{m: 0.7 for m in METRICS}, "psnr": 40.0}]
    values = {**{m: 0.6 for m in METRICS}, "psnr": 23.0}
    cells = [prof.config(scale=2, crop_size=88, use_tv=False, seed=1),
             prof.config(scale=2, crop_size=88, use_tv=True, seed=0, tv_weight=0.01)]
    # under `paper` the set's PSNR is that of the mean MSE (23.0 dB), not the mean of 20 and 40: stored as given
    scored = [scoring.Scored("paper", "bicubic", 2, EvalResult({**values, "psnr": 22.9}, "paper", 2, 2, per_image))]
    scored += [scoring.Scored("paper", f"run{k}", 2, EvalResult(values, "paper", 2, 2, per_image), c)
               for k, c in enumerate(cells)]
    paths = scoring.write_eval_csv(scored, tmp_path)
    assert [p.name for p in paths] == ["per_image_paper.csv", "summary.csv"]
    rows = _rows(paths[0])
    assert list(rows[0]) == ["method", "scale", "crop_size", "use_tv", "tv_weight", "seed", "image", *METRICS]
    assert [(r["method"], r["crop_size"], r["use_tv"], r["tv_weight"], r["seed"], r["image"], r["psnr"])
            for r in rows[::2]] == [("bicubic", "", "", "", "", "a.png", "20.000000"),
                                    ("run0", "88", "0", "0", "1", "a.png", "20.000000"),
                                    ("run1", "88", "1", "0.01", "0", "a.png", "20.000000")]
    assert rows[1]["image"] == "b.png" and rows[1]["psnr"] == "40.000000" and rows[1]["ssim"] == "0.700000"
    summary = _rows(paths[1])
    assert list(summary[0]) == ["protocol", "method", "scale", "crop_size", "use_tv", "tv_weight", "seed", "count",
                                *METRICS]
    assert [(r["method"], r["count"], r["psnr"], r["ssim"]) for r in summary] == [
        ("bicubic", "2", "22.900000", "0.600000"), ("run0", "2", "23.000000", "0.600000"),
        ("run1", "2", "23.000000", "0.600000")]


def test_the_quick_profiles_validation_set_is_set5_and_set14_by_name(data_root, set5_dir, set14_dir):
    prof = config.get_profile("quick")
    assert prof.base.val_data == "set5+set14"
    folder, limit, max_side = scoring.validation_set(prof)
    assert folder == data_root / "Set5+Set14" and (limit, max_side) == (prof.base.val_limit, prof.base.val_max_side)
    names = [p.name for p in images.list_images(folder)]
    expected = [f"set5_{p.name}" for p in images.list_images(set5_dir)]
    expected += [f"set14_{p.name}" for p in images.list_images(set14_dir)]
    assert sorted(names) == sorted(expected) and len(names) == 19
    assert scoring.validation_set(config.get_profile("smoke"))[0] == datasets.data_folder("set5+set14", "val")


def test_read_meta(tmp_path):
    assert scoring.read_meta(tmp_path) == {}
    (tmp_path / "meta.json").write_text('{"vgg_weights_used": "random"}')
    assert scoring.read_meta(tmp_path) == {"vgg_weights_used": "random"}


def test_bicubic_scores_are_made_again_when_the_images_change(profile, runs, calls, tmp_path):
    scoring.score_runs(profile, runs, out_dir=tmp_path / "eval", device="cpu", progress=False)
    folder = scoring.validation_set(profile)[0]
    first = sorted(folder.iterdir())[0]
    stat = first.stat()
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the folder's signature changes
    try:
        calls["loaded"].clear(), calls["scored"].clear()
        scoring.score_runs(profile, runs, out_dir=tmp_path / "eval", device="cpu", progress=False)
        assert calls["loaded"] == [] and calls["scored"] == [{"bicubic"}] * len({c.scale for c in [
            config.TrainConfig.from_dict(json.loads((d / "config.json").read_text())) for d in runs.values()]})
    finally:
        os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.equality
def test_scores_made_two_at_a_time_equal_scores_made_in_one_pass(profile, runs, tmp_path):
    # every run is scored in one thread in both ways, with the same kernels in the same order, so the
    # values agree to the bit (no rounding difference to allow for)
    one = scoring.score_runs(profile, runs, out_dir=tmp_path / "one", device="cpu", progress=False, workers=1)
    for d in runs.values():
        (d / scoring.SCORES).unlink()
    two = scoring.score_runs(profile, runs, out_dir=tmp_path / "two", device="cpu", progress=False, workers=2)
    a, b = _by_method(one), _by_method(two)
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key].values, a[key].per_image) == (b[key].values, b[key].per_image), key
