"""srgan_lib.tv_study: grouping by weight, the smallest distinguishable weight, the TV/pixel gradient ratio against
a hand computation (float64), the Markdown table and figure, and the study end to end on a tiny profile."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import noise_folder

from srgan_lib import batches, config, data, grid, losses, models, tv_study
from srgan_lib.checkpoint import save_generator
from srgan_lib.evaluate import EvalResult
from srgan_lib.metrics import METRICS
from srgan_lib.scoring import Scored
from srgan_lib.stats import Difference

WEIGHTS = (0.0, grid.DEFAULT_TV_WEIGHT, 1e-4, 1.0)


def _diff(mean: float, half: float) -> Difference:
    return Difference(mean, mean - half, mean + half, (mean, mean), 3, "seeds")


def _weight(scale, weight, psnr_diff, ssim_diff=(0.0, 1.0)) -> tv_study.WeightResult:
    """A hand-made weight: ``psnr_diff``/``ssim_diff`` = (mean, half-width) of its difference from weight 0."""
    vs = None if weight == 0 else {m: _diff(0.0, 1.0) for m in METRICS}
    if vs is not None:
        vs["psnr"], vs["ssim"] = _diff(*psnr_diff), _diff(*ssim_diff)
    return tv_study.WeightResult(scale, weight, {m: [1.0, 1.2] for m in METRICS}, vs, [f"run{weight}_s0", "s1"])


def test_smallest_distinguishable_weight():
    results = [_weight(4, 0.0, None),
               _weight(4, 1.0, (-0.5, 0.1)),  # listed first: the smallest is looked for, not the first
               _weight(4, 4e-8, (0.01, 0.02)),  # interval [-0.01, 0.03]: not
               _weight(4, 1e-4, (-0.05, 0.04), ssim_diff=(0.01, 0.005)),  # [-0.09, -0.01]: yes
               _weight(2, 4e-8, (0.3, 0.1)), _weight(2, 1.0, (0.0, 0.2))]
    assert tv_study.smallest_distinguishable(results, 4) == 1e-4
    assert tv_study.smallest_distinguishable(results, 2) == 4e-8  # each scale on its own
    assert tv_study.smallest_distinguishable(results, 4, "ssim") == 1e-4
    assert tv_study.smallest_distinguishable([_weight(4, 1.0, (0.0, 0.2))], 4) is None
    assert tv_study.smallest_distinguishable(results, 8) is None


def _scored_study(profile):
    """Every study run of ``profile`` scored by hand: per-image PSNR = BASE + seed offset - 3 dB x weight."""
    base = np.array([25.0, 27.0, 30.0])
    scored = []
    for scale in profile.scales:
        for seed in profile.seeds:
            for w in profile.tv_weights:
                per = base + 2.0 * seed - 3.0 * w + 0.01 * np.arange(3) * seed
                rows = [{"name": f"i{i}", **{m: 0.5 for m in METRICS}, "psnr": float(p)} for i, p in enumerate(per)]
                res = EvalResult({**{m: 0.5 for m in METRICS}, "psnr": float(per.mean())}, "standard", scale, 3, rows)
                cfg = grid.tv_config(profile, scale, seed, w)
                scored.append(Scored("standard", grid.run_name(cfg), scale, res, cfg))
    return scored


def test_study_results_pair_each_weight_with_weight_zero():
    profile = dataclasses.replace(config.get_profile("smoke"), scales=(2, 4), seeds=(0, 1), tv_weights=WEIGHTS)
    scored = _scored_study(profile)
    other = Scored("paper", scored[-1].method, 4, scored[0].result, scored[-1].cfg)  # another protocol: ignored
    results = tv_study.study_results(profile, [other, *scored])
    assert [(r.scale, r.weight) for r in results] == [(s, w) for s in (2, 4) for w in WEIGHTS]
    zero, default, _, one = results[4:]
    assert zero.vs_zero is None and zero.run_names == ["srgan_x4_c88_tv0_s0", "srgan_x4_c88_tv0_s1"]
    assert default.run_names == ["srgan_x4_c88_tv1_s0", "srgan_x4_c88_tv1_s1"]  # the grid's cells
    assert one.run_names == ["srgan_x4_c88_tv1_w1_s0", "srgan_x4_c88_tv1_w1_s1"]
    # set values per seed: mean(BASE) + 2 seed - 3 w + 0.01 seed
    assert one.values["psnr"] == pytest.approx([82 / 3 - 3.0, 82 / 3 + 2.01 - 3.0])
    # paired with weight 0 of the same seed: exactly -3 dB x weight for each seed, an interval of width 0
    assert one.vs_zero["psnr"].per_seed == pytest.approx((-3.0, -3.0)) and one.vs_zero["psnr"].distinguishable
    assert default.vs_zero["psnr"].mean == pytest.approx(-3 * 4e-8, abs=1e-9)
    assert not one.vs_zero["ssim"].distinguishable  # SSIM the same everywhere
    assert tv_study.smallest_distinguishable(results, 4) == 4e-8


@pytest.fixture
def tiny_run(tmp_path):
    """A generator of random weights (x4) saved as a run, and the config whose training batches it sees."""
    cfg = dataclasses.replace(config.get_profile("smoke").config(scale=4, crop_size=16, seed=3),
                              train_data=str(noise_folder(tmp_path / "train", 3, 40, 48, 0)), batch_size=2)
    torch.manual_seed(0)
    gen = models.Generator(cfg.scale, cfg.num_feat, cfg.num_block, cfg.upsample_skip)
    with torch.no_grad():
        for p in gen.parameters():  # away from bicubic: a residual that is not smooth
            p.add_(0.1 * torch.randn_like(p))
    save_generator(tmp_path / "run" / "generator.pt", gen, cfg, 0)
    return tmp_path / "run", cfg, gen


def _hand_gradients(sr: np.ndarray, hr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """d MSE / d sr and d TV / d sr (eq. (7) as srgan_lib.losses.tv_loss reads it), written out in NumPy."""
    g_pixel = 2.0 * (sr - hr) / sr.size
    g_tv = np.zeros_like(sr)
    for axis in (2, 3):  # each squared neighbour difference pulls its two pixels apart
        d = np.diff(sr, axis=axis)
        grad = 2.0 * d / d.size
        lead = [slice(None)] * 4
        lead[axis] = slice(1, None)
        g_tv[tuple(lead)] += grad
        lead[axis] = slice(None, -1)
        g_tv[tuple(lead)] -= grad
    return g_pixel, g_tv


def test_gradient_ratio_against_a_hand_computation(tiny_run):
    run_dir, cfg, gen = tiny_run
    dataset = data.TrainDataset(cfg.train_data, cfg.scale, cfg.crop_size, resize_method=cfg.resize_method,
                                progress=False)
    gen = gen.double().eval()
    ratios = []
    for k in range(2):
        lr, hr = (t.double() for t in batches.make_batch(dataset, k, cfg.batch_size, cfg.seed))
        with torch.no_grad():
            sr = gen(lr)
        g_pixel, g_tv = _hand_gradients(sr.numpy(), hr.numpy())
        ratios.append(np.linalg.norm(g_tv) / np.linalg.norm(g_pixel))
        # at weight w the training loss's TV gradient is w times this (its pixel weight is 1)
        for w in (4e-8, 1e-2):
            tv_only = losses.GeneratorLoss.from_config(dataclasses.replace(
                cfg, pixel_weight=0.0, content_weight=0.0, adv_weight=0.0, use_tv=True, tv_weight=w))
            x = sr.clone().requires_grad_(True)
            (g_w,) = torch.autograd.grad(tv_only(x, hr)["g_total"], x)
            # float64 throughout: ~1.5e3 terms summed in another order, relative error << 1e-12
            assert float(g_w.norm()) / np.linalg.norm(g_pixel) == pytest.approx(w * ratios[-1], rel=1e-12)
    assert ratios[0] != pytest.approx(ratios[1], rel=1e-6)  # two batches: the mean is over both
    assert tv_study.gradient_ratio(run_dir, cfg, steps=2) == pytest.approx(np.mean(ratios), rel=1e-12)
    assert tv_study.gradient_ratio(run_dir, cfg, steps=1) == pytest.approx(ratios[0], rel=1e-12)


def test_markdown_and_figure_show_every_weight(tmp_path):
    profile = dataclasses.replace(config.get_profile("smoke"), scales=(2, 4), seeds=(0, 1), tv_weights=WEIGHTS)
    results = tv_study.study_results(profile, _scored_study(profile))
    ratios = {2: 3.0, 4: 5.0}
    md = tv_study.to_markdown(profile, results, ratios)
    for scale in (2, 4):
        section = md.split(f"## x{scale}")[1].split("## x")[0]
        rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]
        assert [r.split(" | ")[0] for r in rows] == ["| 0", "| 4e-08", "| 0.0001", "| 1"]
        # the gradient column: weight x ratio at weight 1
        assert [r.split(" | ")[2] for r in rows] == [f"{w * ratios[scale]:.1e}" for w in WEIGHTS]
        assert f"x{scale}: smallest TV weight whose PSNR differs from weight 0 distinguishably from noise: " \
               "**4e-08**." in section
    path = tv_study.write_study(profile, results, ratios, tmp_path)
    assert path == tmp_path / "tv_study.md" and path.read_text() == md
    fig = tv_study.plot_study(results, ratios)
    ratio_ax = fig.axes[-1]
    for line, scale in zip(ratio_ax.lines, (2, 4)):  # the gradient ratio against the positive weights
        np.testing.assert_allclose(line.get_xdata(), WEIGHTS[1:])
        np.testing.assert_allclose(line.get_ydata(), np.array(WEIGHTS[1:]) * ratios[scale])


def test_run_study_trains_scores_and_measures_every_scale(tmp_path):
    smoke = config.get_profile("smoke")
    base = dataclasses.replace(smoke.base, train_data=str(noise_folder(tmp_path / "train", 3, 40, 48, 0)),
                               val_data=str(noise_folder(tmp_path / "val", 2, 32, 36, 1)), val_limit=None,
                               val_max_side=None, warmup_iters=1, gan_iters=1, val_images=0, log_every=1,
                               ckpt_every=1, vgg_layer="conv1_2", device="cpu")
    profile = dataclasses.replace(smoke, base=base, scales=(2, 4), crop_sizes=(16,), seeds=(0, 1), study_crop=16,
                                  tv_weights=(0.0, grid.DEFAULT_TV_WEIGHT, 1.0))
    results, ratios = tv_study.run_study(profile, root=tmp_path / "runs", results=tmp_path / "results",
                                         progress=False)
    assert [(r.scale, r.weight, len(r.run_names)) for r in results] == [
        (s, w, 2) for s in (2, 4) for w in profile.tv_weights]
    assert sorted(ratios) == [2, 4] and all(np.isfinite(v) and v > 0 for v in ratios.values())
    assert (tmp_path / "results" / "eval" / "tv_study" / "per_image_standard.csv").is_file()
    stored = json.loads((tmp_path / "runs" / "srgan_x2_c16_tv1_s0" / "scores.json").read_text())["scores"]
    assert [key.split("|")[1] for key in stored] == ["standard"]  # the study scores one protocol
