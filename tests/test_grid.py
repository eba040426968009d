"""srgan_lib.grid: run names, the ablation grid, and the plan of every run (warm-ups shared per scale/crop/seed)."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from srgan_lib import config, grid


def test_run_names_spell_out_the_config():
    prof = config.get_profile("smoke")
    assert grid.run_name(prof.config(scale=2, crop_size=128, use_tv=False, seed=3)) == "srgan_x2_c128_tv0_s3"
    assert grid.run_name(prof.config(scale=4, crop_size=88, use_tv=True, seed=0)) == "srgan_x4_c88_tv1_s0"
    # another TV weight is in the name; the default (4e-8, ref's strength) and TV off (weight unused) are not
    assert grid.run_name(prof.config(scale=4, crop_size=88, seed=0, tv_weight=0.01)) == "srgan_x4_c88_tv1_w0.01_s0"
    assert grid.run_name(prof.config(scale=4, crop_size=88, seed=1, tv_weight=1.0)) == "srgan_x4_c88_tv1_w1_s1"
    assert grid.run_name(prof.config(scale=4, use_tv=False, seed=0, tv_weight=0.01)) == "srgan_x4_c88_tv0_s0"
    assert grid.DEFAULT_TV_WEIGHT == config.TrainConfig().tv_weight == 4e-8
    # pixel MSE only (gan_iters == 0): an SRResNet, named by its iterations
    quick = config.get_profile("quick").config(scale=4, crop_size=88, seed=2, warmup_iters=200, gan_iters=10)
    assert grid.run_name(grid.control_config(quick)) == "srresnet_x4_c88_it210_s2"
    assert grid.run_name(grid.warmup_config(quick)) == "srresnet_x4_c88_it200_s2"
    # training data other than the profile's, by name, are in the name (runs on two sets never mix); a folder is not
    bsds = dataclasses.replace(quick, train_data="bsds200")
    assert grid.run_name(bsds) == "srgan_x4_c88_tv1_s2_bsds200"
    assert grid.run_name(grid.warmup_config(bsds)) == "srresnet_x4_c88_it200_s2_bsds200"
    assert grid.run_name(dataclasses.replace(quick, train_data="/data/standin")) == "srgan_x4_c88_tv1_s2"
    assert grid.run_name(config.get_profile("paper").config(train_data="div2k")) == "srgan_x4_c88_tv1_s0"


def test_mse_only_configs_read_no_gan_field():
    """An SRResNet has one config whatever TV setting the cell it comes from had."""
    quick = config.get_profile("quick")
    on, off = (quick.config(scale=2, crop_size=128, use_tv=tv, seed=1, tv_weight=1.0, warmup_iters=200, gan_iters=10)
               for tv in (True, False))
    assert grid.warmup_config(on) == grid.warmup_config(off)
    assert grid.control_config(on) == grid.control_config(off)
    warm, control = grid.warmup_config(on), grid.control_config(on)
    assert (warm.warmup_iters, warm.gan_iters, warm.use_tv, warm.tv_weight) == (200, 0, False, grid.DEFAULT_TV_WEIGHT)
    assert (control.warmup_iters, control.gan_iters, control.total_iters) == (210, 0, on.total_iters)
    assert dataclasses.replace(warm, warmup_iters=210) == control  # nothing else differs
    assert grid.warmup_config(config.get_profile("paper").config()) is None  # no warm-up in the paper profile


def test_ablation_grid_is_scale_x_crop_x_tv_x_seed():
    prof = config.get_profile("quick")
    cells = grid.ablation_grid(prof)
    assert len(cells) == len({grid.run_name(c) for c in cells}) == 2 * 3 * 2 * 3
    assert {(c.scale, c.crop_size, c.use_tv, c.seed) for c in cells} == {
        (s, c, tv, seed) for s in (2, 4) for c in (88, 128, 168) for tv in (True, False) for seed in (0, 1, 2)}
    assert len(grid.ablation_grid(prof, seeds=(5,))) == 12 and {c.seed for c in grid.ablation_grid(prof, (5,))} == {5}
    assert all(c.tv_weight == grid.DEFAULT_TV_WEIGHT for c in cells)


def test_tv_config_weight_zero_and_default_are_the_grid_cells():
    prof = config.get_profile("quick")
    cells = {grid.run_name(c): c for c in grid.ablation_grid(prof)}
    zero, default = (grid.tv_config(prof, 4, 1, w) for w in (0.0, grid.DEFAULT_TV_WEIGHT))
    assert cells[grid.run_name(zero)] == zero and not zero.use_tv
    assert cells[grid.run_name(default)] == default and default.use_tv
    other = grid.tv_config(prof, 4, 1, 1e-4)
    assert other.effective_tv_weight == 1e-4 and grid.run_name(other) not in cells
    assert {c.crop_size for c in (zero, default, other)} == {prof.study_crop}


def _by_kind(runs):
    return Counter(r.kind for r in runs)


@pytest.mark.parametrize("name, counts", [
    # smoke: 2 scales x 2 crops x 2 TV x 2 seeds; a control per scale and seed; the study's weights
    # (0, 4e-8, 1): 0 and 4e-8 are grid cells, so 1 new run per scale and seed; a warm-up per scale, crop, seed
    ("smoke", {"warmup": 2 * 2 * 2, "grid": 16, "control": 2 * 2, "tv_study": 2 * 2 * 1}),
    # quick: 2 x 3 x 2 x 3 seeds; 6 weights of which 4 new
    ("quick", {"warmup": 2 * 3 * 3, "grid": 36, "control": 2 * 3, "tv_study": 2 * 3 * 4}),
    ("paper", {"grid": 36, "control": 2 * 3, "tv_study": 2 * 3 * 4}),  # no warm-up: nothing to share
])
def test_plan_has_every_run_once(name, counts):
    prof = config.get_profile(name)
    runs = grid.plan(prof)
    assert _by_kind(runs) == counts
    assert len({r.name for r in runs}) == len(runs)
    assert {grid.run_name(c) for c in grid.ablation_grid(prof)} == {r.name for r in runs if r.kind == "grid"}


def test_plan_of_the_quick_profile_shares_one_warmup_per_scale_crop_seed():
    prof = config.get_profile("quick")
    assert prof.base.warmup_iters > 0 and prof.base.gan_iters > 0
    runs = grid.plan(prof)
    by_name = {r.name: r for r in runs}
    warmups = [r for r in runs if r.kind == "warmup"]
    assert len({(r.cfg.scale, r.cfg.crop_size, r.cfg.seed) for r in warmups}) == len(warmups)
    assert all(r.start_from is None and r.start_step == 0 and r.cfg.gan_iters == 0 for r in warmups)
    # warm-ups come first: each run is trained after the warm-up it continues
    kinds = [r.kind for r in runs]
    assert kinds == ["warmup"] * len(warmups) + [k for k in kinds if k != "warmup"]
    for r in runs:
        if r.kind == "warmup":
            continue
        warm = by_name[r.start_from].cfg  # every other run continues a warm-up of its own scale, crop and seed
        assert by_name[r.start_from].kind == "warmup"
        assert (warm.scale, warm.crop_size, warm.seed) == (r.cfg.scale, r.cfg.crop_size, r.cfg.seed)
        assert r.start_step == warm.warmup_iters == prof.base.warmup_iters
        # the warm-up is this run's own first phase: the configs differ only in fields the MSE warm-up never
        # reads (train() checks it again when it continues the warm-up; tests/test_ablation.py trains such runs)
        differ = {k for k, v in warm.to_dict().items() if r.cfg.to_dict()[k] != v}
        assert differ <= {"use_tv", "tv_weight", "gan_iters", "warmup_iters"}, (r.name, differ)
    cell = prof.config(scale=2, crop_size=prof.study_crop, seed=1)
    control = by_name[grid.run_name(grid.control_config(cell))]
    assert control.kind == "control" and control.start_from == grid.run_name(grid.warmup_config(cell))
    assert control.cfg.gan_iters == 0 and control.cfg.total_iters == cell.total_iters > control.start_step
    # the study's weight 0 and default weight are the grid's cells, planned once as such
    for w in (0.0, grid.DEFAULT_TV_WEIGHT):
        assert by_name[grid.run_name(grid.tv_config(prof, 2, 1, w))].kind == "grid"
    study = [r for r in runs if r.kind == "tv_study"]
    assert {r.cfg.tv_weight for r in study} == {1e-6, 1e-4, 1e-2, 1.0}
    assert {r.cfg.crop_size for r in study} == {r.cfg.crop_size for r in runs if r.kind == "control"} == {88}


def test_plan_of_the_paper_profile_trains_every_run_from_scratch():
    prof = config.get_profile("paper")
    runs = grid.plan(prof)
    assert all(r.start_from is None and r.start_step == 0 for r in runs)
    control = next(r for r in runs if r.kind == "control")
    assert control.cfg.warmup_iters == prof.base.gan_iters == 1300 and control.cfg.gan_iters == 0


def test_plan_of_some_kinds_brings_the_warmups_they_need():
    prof = config.get_profile("smoke")
    study = grid.plan(prof, kinds=("tv_study",))
    # every weight is a study run here (the grid is not asked for), with the crop-88 warm-ups only
    assert _by_kind(study) == {"warmup": 2 * 2, "tv_study": 2 * 2 * 3}
    assert {r.cfg.crop_size for r in study} == {prof.study_crop}
    assert _by_kind(grid.plan(prof, seeds=(7,), kinds=("control",))) == {"warmup": 2, "control": 2}
    assert {r.cfg.seed for r in grid.plan(prof, seeds=(7,))} == {7}
