"""Checkpoints: written so that a kill never loses the last good one, read back exactly, refused when foreign."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from srgan_lib import checkpoint, config, models
from srgan_lib.checkpoint import GENERATOR, LAST, PREV
from srgan_lib.errors import CheckpointError


def _cfg() -> config.TrainConfig:
    return config.get_profile("smoke").config(scale=2, crop_size=16, seed=4)


def _state(step: int) -> dict:
    return {"step": step, "config": _cfg().to_dict(), "weights": torch.full((3,), float(step))}


def test_save_keeps_the_previous_checkpoint_and_loads_the_newest(tmp_path):
    checkpoint.save_checkpoint(tmp_path, _state(1))
    checkpoint.save_checkpoint(tmp_path, _state(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST, PREV]  # no temporary file left behind
    assert checkpoint.load_checkpoint(tmp_path)["step"] == 2
    assert torch.load(tmp_path / PREV, weights_only=True)["step"] == 1


def test_a_corrupt_last_falls_back_to_prev_and_two_corrupt_files_name_the_fix(tmp_path):
    checkpoint.save_checkpoint(tmp_path, _state(1))
    checkpoint.save_checkpoint(tmp_path, _state(2))
    (tmp_path / LAST).write_bytes((tmp_path / LAST).read_bytes()[:100])  # a kill mid-copy, say
    assert checkpoint.load_checkpoint(tmp_path)["step"] == 1
    (tmp_path / PREV).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=f"delete {tmp_path}"):
        checkpoint.load_checkpoint(tmp_path)
    assert checkpoint.load_checkpoint(tmp_path / "empty") is None


def test_a_failing_save_leaves_the_last_checkpoint_untouched(tmp_path, monkeypatch):
    checkpoint.save_checkpoint(tmp_path, _state(1))
    before = (tmp_path / LAST).read_bytes()

    def disk_full(obj, path):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", disk_full)
    with pytest.raises(OSError):
        checkpoint.save_checkpoint(tmp_path, _state(2))
    assert (tmp_path / LAST).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST]


def test_rng_state_round_trips_every_generator():
    state = checkpoint.rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    checkpoint.set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_load_generator_from_each_kind_of_path(tmp_path):
    cfg = _cfg()
    net = models.Generator(cfg.scale, cfg.num_feat, cfg.num_block, cfg.upsample_skip)
    torch.nn.init.normal_(net.tail.weight)  # not the zero initialisation: a load must carry it
    checkpoint.save_checkpoint(tmp_path, {"config": cfg.to_dict(), "generator": net.state_dict(), "step": 3})
    from_last, cfg_last = checkpoint.load_generator(tmp_path)  # a stopped run: its newest checkpoint
    checkpoint.save_generator(tmp_path / GENERATOR, net, cfg, step=5)
    for path in (tmp_path, tmp_path / GENERATOR, tmp_path / LAST):
        loaded, loaded_cfg = checkpoint.load_generator(path)
        assert loaded_cfg == cfg and not loaded.training
        assert torch.equal(loaded.tail.weight, net.tail.weight)
    assert cfg_last == cfg and torch.equal(from_last.tail.weight, net.tail.weight)


def test_foreign_and_mismatched_files_are_one_line_errors(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an srgan checkpoint"):
        checkpoint.load_generator(tmp_path / "foreign.pt")
    cfg = _cfg()
    small = models.Generator(cfg.scale, cfg.num_feat, cfg.num_block, cfg.upsample_skip)
    bigger = config.TrainConfig.from_dict({**cfg.to_dict(), "num_feat": cfg.num_feat * 2})
    checkpoint.save_generator(tmp_path / "g.pt", small, bigger, step=1)
    with pytest.raises(CheckpointError, match="do not fit") as info:
        checkpoint.load_generator(tmp_path / "g.pt")
    assert "g.pt" in str(info.value) and "\n" not in str(info.value)  # the CLI prints it as one line
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        checkpoint.load_generator(tmp_path / "missing.pt")
