"""Profiles, run configurations and seeding (run names and the grid: tests/test_grid.py)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from srgan_lib import config, datasets, download
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
    assert cfg.adv_weight == 1e-3 and cfg.tv_weight == 4e-8  # eq. (1); ref
    assert cfg.batch_size == 64 and cfg.gan_iters == 100 * -(-800 // 64)  # ref: 100 epochs, batch 64
    assert cfg.warmup_iters == 0 and cfg.upsample_skip == "none"
    assert cfg.vgg_weights == "imagenet" and cfg.train_data == "div2k"


def test_smoke_is_smaller_than_quick_smaller_than_paper():
    s, q, p = (config.get_profile(n).base for n in ("smoke", "quick", "paper"))
    assert s.total_iters < q.total_iters < p.total_iters
    assert s.num_feat * s.num_block < q.num_feat * q.num_block < p.num_feat * p.num_block
    assert s.vgg_weights == "random" and q.vgg_weights == "auto"


def test_crop_not_divisible_by_scale_is_a_clear_error():
    with pytest.raises(ConfigError, match="crop_size=90 is not divisible by scale=4"):
        config.get_profile("paper").config(scale=4, crop_size=90)


def test_tv_switch():
    cfg = config.get_profile("paper").config(use_tv=False)
    assert cfg.tv_weight == 4e-8 and cfg.effective_tv_weight == 0.0


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


# --- SRGAN_OVERRIDES: an explicit stand-in run


def test_overrides_from_the_environment_take_each_fields_type(monkeypatch, tmp_path):
    monkeypatch.setenv("SRGAN_OVERRIDES", f" gan_iters=20, vgg_weights=random,train_data={tmp_path}/div2k_standin_train,"
                                          "val_limit=none,val_max_side=96,lr=5e-4,augment=false,amp=True,")
    prof = config.get_profile("paper")
    paper = config.PROFILES["paper"].base
    assert prof.base == dataclasses.replace(paper, gan_iters=20, vgg_weights="random", val_limit=None, val_max_side=96,
                                            train_data=f"{tmp_path}/div2k_standin_train", lr=5e-4, augment=False)
    assert isinstance(prof.base.gan_iters, int) and isinstance(prof.base.lr, float) and prof.base.augment is False
    assert prof.description == (f"GPU + DIV2K, as the paper did [overrides: gan_iters=20, vgg_weights=random, "
                                f"train_data={tmp_path}/div2k_standin_train, val_limit=None, val_max_side=96, "
                                "lr=0.0005, augment=False, amp=True]")
    # every run of the profile starts from the overridden base; the grid's axes are still set per run
    cfg = prof.config(scale=2, crop_size=128, use_tv=False)
    assert (cfg.gan_iters, cfg.scale, cfg.crop_size, cfg.use_tv) == (20, 2, 128, False)
    assert config.PROFILES["paper"].base.gan_iters == 1300  # the registry itself is untouched


def test_overrides_of_the_profiles_own_fields(monkeypatch):
    """seeds, scales, crop sizes: tuples written with '/' (',' separates the overrides)."""
    monkeypatch.setenv("SRGAN_OVERRIDES", "seeds=0,scales=4,crop_sizes=88/128,gan_iters=20")
    prof = config.get_profile("paper")
    assert (prof.seeds, prof.scales, prof.crop_sizes, prof.base.gan_iters) == ((0,), (4,), (88, 128), 20)
    assert prof.description.endswith("[overrides: seeds=0, scales=4, crop_sizes=88/128, gan_iters=20]")
    assert config.PROFILES["paper"].seeds != (0,)  # the registry itself is untouched


def test_no_overrides_is_the_profile_itself(monkeypatch):
    monkeypatch.delenv("SRGAN_OVERRIDES", raising=False)
    assert config.get_profile("quick") is config.PROFILES["quick"]
    monkeypatch.setenv("SRGAN_OVERRIDES", " ")
    assert config.get_profile("quick") is config.PROFILES["quick"]


@pytest.mark.parametrize("spec, named", [
    ("gan_iters", "'gan_iters' is not field=value"),
    ("learning_rate=1", "'learning_rate=1' is not a field of TrainConfig or Profile"),
    ("description=x", "'description=x' is not a field of TrainConfig or Profile"),
    ("scale=2", "'scale=2' is set by SRGAN_PROFILE or per run"),
    ("profile=quick", "'profile=quick' is set by SRGAN_PROFILE"),
    ("gan_iters=20.5", "gan_iters='20.5' is not a value of type int"),
    ("augment=maybe", "augment='maybe' is not a value of type bool"),
    ("val_limit=all", "val_limit='all' is not a value of type int | None"),
    ("betas=0.5", "betas='0.5' is not a value of type tuple"),
    ("seeds=0/one", "seeds='0/one' is not a value of type tuple[int, ...]"),
    ("vgg_weights=bogus", "vgg_weights='bogus': use one of imagenet, auto, random"),
])
def test_a_bad_override_is_a_one_line_error_naming_it(monkeypatch, spec, named):
    monkeypatch.setenv("SRGAN_OVERRIDES", spec)
    with pytest.raises(ConfigError) as info:
        config.get_profile("smoke")
    message = str(info.value)
    assert message.startswith("SRGAN_OVERRIDES") and named in message and "\n" not in message


def test_the_quick_profiles_larger_training_set_is_a_registry_dataset():
    name, folder = config.get_profile("quick").train_download
    assert datasets.DATASETS[name].path("train") == config.data_root() / folder
    assert download.MARKER == config.INSTALLED_MARKER
