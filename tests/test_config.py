"""Profiles, run names, the ablation grid and seeding."""

from __future__ import annotations

import dataclasses
import json

import pytest

from srgan_lib import config
from srgan_lib.errors import ConfigError


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("SRGAN_PROFILE", "quick")
    assert config.get_profile().name == "quick"
    monkeypatch.setenv("SRGAN_PROFILE", "bogus")
    with pytest.raises(ConfigError, match="bogus"):
        config.get_profile()


def test_default_profile_without_env_follows_cuda(monkeypatch):
    import torch

    monkeypatch.delenv("SRGAN_PROFILE", raising=False)
    expected = "paper" if torch.cuda.is_available() else "quick"
    assert config.get_profile().name == expected


def test_paper_defaults_follow_paper_and_reference_code():
    cfg = config.get_profile("paper").base
    assert (cfg.lr, cfg.betas) == (1e-3, (0.9, 0.999))  # paper sec. 4
    assert cfg.adv_weight == 1e-3 and cfg.tv_weight == 2e-8  # eq. (1); ref
    assert cfg.batch_size == 64 and cfg.gan_iters == 100 * -(-800 // 64)  # ref: 100 epochs, batch 64
    assert cfg.warmup_iters == 0 and cfg.upsample_skip == "none"
    assert cfg.vgg_weights == "imagenet" and cfg.train_data == "div2k"


def test_smoke_is_smaller_than_quick_smaller_than_paper():
    s, q, p = (config.get_profile(n).base for n in ("smoke", "quick", "paper"))
    assert s.total_iters < q.total_iters < p.total_iters
    assert s.num_feat * s.num_block < q.num_feat * q.num_block < p.num_feat * p.num_block
    assert s.vgg_weights == "random" and q.vgg_weights == "auto"


def test_run_name_and_grid():
    prof = config.get_profile("smoke")
    cfg = prof.config(scale=2, crop_size=128, use_tv=False, seed=3)
    assert config.run_name(cfg) == "srgan_x2_c128_tv0_s3"
    grid = config.ablation_grid(prof)
    assert len(grid) == 2 * 3 * 2
    assert len({config.run_name(c) for c in grid}) == 12
    assert len(config.ablation_grid(prof, seeds=(0, 1))) == 24


def test_crop_not_divisible_by_scale_is_a_clear_error():
    with pytest.raises(ConfigError, match="crop_size=90 is not divisible by scale=4"):
        config.get_profile("paper").config(scale=4, crop_size=90)


def test_tv_switch():
    cfg = config.get_profile("paper").config(use_tv=False)
    assert cfg.tv_weight == 2e-8 and cfg.effective_tv_weight == 0.0


def test_json_roundtrip():
    cfg = config.get_profile("quick").config(scale=2, crop_size=168)
    again = config.TrainConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg
    with pytest.raises(ConfigError, match="unknown config keys"):
        config.TrainConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_older_config_json_with_removed_fields_still_loads():
    cfg = config.get_profile("quick").config()
    old = {**cfg.to_dict(), "num_workers": 4}  # as config.json files of older versions hold it
    assert "num_workers" in config.REMOVED_KEYS and not hasattr(cfg, "num_workers")
    assert config.TrainConfig.from_dict(old) == cfg


def test_frozen():
    cfg = config.get_profile("smoke").base
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.scale = 2  # type: ignore[misc]


def test_unknown_override_is_config_error():
    with pytest.raises(ConfigError, match="TrainConfig"):
        config.get_profile("smoke").config(learning_rate=1)


def test_seed_everything_repeats_streams():
    import numpy as np
    import torch

    config.seed_everything(7)
    a = (torch.rand(3), np.random.rand(3))
    config.seed_everything(7)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all()
