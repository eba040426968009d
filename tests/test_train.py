"""The training loop: exact resume (after SIGKILL and in-process), NaN stop, finished runs, D frozen in the G step."""

from __future__ import annotations

import csv
import dataclasses
import json
import multiprocessing
import os
import signal

import numpy as np
import pytest
import torch

from srgan_lib import batches, checkpoint, config, distributed, grid, images, train
from srgan_lib.errors import CheckpointError, ConfigError, UserError

KILL_STEP = 4  # in the GAN phase, after the warm-up's 2 steps




def _write_images(folder, n, h, w, seed):
    rng = np.random.default_rng(seed)
    for i in range(n):
        yy, xx = np.mgrid[0:h, 0:w]
        base = (np.sin(xx / (3 + i)) + np.cos(yy / (4 + i))) * 60 + 128
        img = np.clip(base[..., None] + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
        images.save_image(img, folder / f"img{i}.png")
    return folder


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Tiny images, a data root, and the tiny config every test trains."""
    root = tmp_path_factory.mktemp("train")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SRGAN_DATA", str(root / "data"))
        cfg = config.TrainConfig(
            profile="smoke", scale=4, crop_size=24, num_feat=8, num_block=1, d_num_feat=8, d_fc=16,
            upsample_skip="bicubic", batch_size=2, warmup_iters=2, gan_iters=5,
            train_data=str(_write_images(root / "hr_train", 3, 40, 48, 0)),
            val_data=str(_write_images(root / "hr_val", 2, 32, 36, 1)),
            val_images=1, val_every=3, log_every=3, ckpt_every=2,
            vgg_layer="conv1_2", vgg_weights="random", device="cpu")
        yield root, cfg


@pytest.fixture(scope="module")
def reference(env):
    """One run never stopped."""
    root, cfg = env
    return train.train(cfg, root / "runs" / "reference", progress=False)


def _losses(run_dir):
    """metrics.csv without the wall-clock column."""
    with open(run_dir / "metrics.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(f)]


def _assert_same_weights(run_a, run_b):
    ga = torch.load(run_a / "generator.pt", weights_only=True)["generator"]
    gb = torch.load(run_b / "generator.pt", weights_only=True)["generator"]
    assert ga.keys() == gb.keys()
    for k in ga:
        assert torch.equal(ga[k], gb[k]), k
    la, lb = checkpoint.load_checkpoint(run_a), checkpoint.load_checkpoint(run_b)
    for k in la["discriminator"]:
        assert torch.equal(la["discriminator"][k], lb["discriminator"][k]), k
    for opt in ("opt_g", "opt_d"):
        for pid, s in la[opt]["state"].items():
            assert torch.equal(s["exp_avg_sq"], lb[opt]["state"][pid]["exp_avg_sq"])


def test_run_folder_contents(reference, env):
    _, cfg = env
    names = {p.name for p in reference.iterdir()}
    assert {"config.json", "meta.json", "metrics.csv", "val.csv", "last.pt", "prev.pt", "generator.pt",
            "warmup_generator.pt"} <= names
    assert config.TrainConfig.from_dict(json.loads((reference / "config.json").read_text())) == cfg
    meta = json.loads((reference / "meta.json").read_text())
    assert meta["vgg_weights_used"] == "random" and meta["finished"] and meta["device"] == "cpu"
    rows = _losses(reference)
    # every log_every=3 steps, plus the ends of the warm-up (2) and of the run (7)
    assert [int(r["step"]) for r in rows] == [2, 3, 6, 7]
    assert [r["phase"] for r in rows] == ["mse", "gan", "gan", "gan"]
    assert rows[0]["g_adv"] == "" and float(rows[-1]["g_adv"]) > 0
    # the warm-up logs MSE alone: its total is its pixel term
    assert rows[0]["g_total"] == rows[0]["g_pixel"]
    for r in rows[1:]:
        assert 0 < float(r["d_x"]) < 1 and 0 < float(r["d_g_z"]) < 1
        assert float(r["d_total"]) == pytest.approx(float(r["d_real"]) + float(r["d_fake"]), rel=1e-5)
    with open(reference / "val.csv", newline="") as f:
        val = list(csv.DictReader(f))
    assert [int(r["step"]) for r in val] == [3, 6, 7]
    assert all(10 < float(r["psnr"]) < 60 and 0 < float(r["ssim"]) <= 1 for r in val)
    g, loaded_cfg = checkpoint.load_generator(reference)
    assert loaded_cfg == cfg and not g.training


def test_same_seed_same_numbers(reference, env):
    root, cfg = env
    again = train.train(cfg, root / "runs" / "again", progress=False)
    assert _losses(again) == _losses(reference)
    _assert_same_weights(again, reference)


def _train_until_killed(cfg_dict, run_dir, kill_step, data_root):
    """Child process: train and SIGKILL itself right after the checkpoint of ``kill_step``."""
    os.environ["SRGAN_DATA"] = data_root
    torch.set_num_threads(1)

    def die(step, _generator):
        if step == kill_step:
            os.kill(os.getpid(), signal.SIGKILL)

    train.train(config.TrainConfig.from_dict(cfg_dict), run_dir, progress=False, on_checkpoint=die)


def test_sigkill_then_resume_equals_uninterrupted(reference, env):
    root, cfg = env
    run_dir = root / "runs" / "killed"
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_train_until_killed,
                        args=(cfg.to_dict(), str(run_dir), KILL_STEP, os.environ["SRGAN_DATA"]))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == -signal.SIGKILL
    assert checkpoint.load_checkpoint(run_dir)["step"] == KILL_STEP
    assert not (run_dir / "generator.pt").exists()
    with pytest.raises(ConfigError, match="--resume"):  # checkpoints are not silently overwritten
        train.train(cfg, run_dir, resume=False, progress=False)
    train.train(cfg, run_dir, resume=True, progress=False)
    _assert_same_weights(run_dir, reference)
    assert _losses(run_dir) == _losses(reference)


class _Stop(Exception):
    pass


def test_in_process_resume_at_the_phase_change(reference, env):
    root, cfg = env
    run_dir = root / "runs" / "stopped"

    def stop(step, _generator):
        if step == cfg.warmup_iters:  # G's optimiser is replaced right after this checkpoint
            raise _Stop

    with pytest.raises(_Stop):
        train.train(cfg, run_dir, progress=False, on_checkpoint=stop)
    assert checkpoint.load_checkpoint(run_dir)["step"] == cfg.warmup_iters
    train.train(cfg, run_dir, progress=False)
    _assert_same_weights(run_dir, reference)
    assert _losses(run_dir) == _losses(reference)


def test_finished_run_is_not_trained_again(reference, env):
    _, cfg = env
    stamps = {p.name: p.stat().st_mtime_ns for p in reference.iterdir() if p.is_file()}
    assert train.train(cfg, reference, resume=False, progress=False) == reference
    assert {p.name: p.stat().st_mtime_ns for p in reference.iterdir() if p.is_file()} == stamps


def test_other_config_in_run_dir_is_an_error(reference, env):
    _, cfg = env
    with pytest.raises(ConfigError, match="seed"):
        train.train(dataclasses.replace(cfg, seed=1), reference, progress=False)


@pytest.mark.parametrize("log_every", [1, 3])
def test_nan_stops_and_keeps_last_good_checkpoint(env, monkeypatch, log_every):
    """A NaN at step 5 stops the run (found at once, or at the next check: step 6's checkpoint)."""
    root, cfg = env
    cfg = dataclasses.replace(cfg, log_every=log_every)
    run_dir = root / "runs" / f"nan{log_every}"
    real = batches.train_batches

    def poisoned(*args, **kwargs):
        for step, (lr, hr) in enumerate(real(*args, **kwargs), start=kwargs.get("start_step", 0)):
            if step == 4:  # the 5th iteration
                hr = hr.clone()
                hr[0, 0, 0, 0] = float("nan")
            yield lr, hr

    monkeypatch.setattr(batches, "train_batches", poisoned)
    with pytest.raises(train.DivergenceError, match=r"g_pixel is nan at step 5") as info:
        train.train(cfg, run_dir, progress=False)
    assert isinstance(info.value, UserError)
    assert checkpoint.load_checkpoint(run_dir)["step"] == 4
    assert not (run_dir / "generator.pt").exists()
    assert max(int(r["step"]) for r in _losses(run_dir)) <= 4
    monkeypatch.setattr(batches, "train_batches", real)  # the data fixed: resuming finishes the run
    train.train(cfg, run_dir, progress=False)
    assert (run_dir / "generator.pt").is_file()


def test_g_step_leaves_d_alone_and_d_step_leaves_g_alone(env):
    _, cfg = env
    config.seed_everything(0)
    tr = train.Trainer(dataclasses.replace(cfg, warmup_iters=0))
    gen = torch.Generator().manual_seed(0)
    lr_img, hr_img = torch.rand(2, 3, 6, 6, generator=gen), torch.rand(2, 3, 24, 24, generator=gen)
    d_before = [p.detach().clone() for p in tr.discriminator.parameters()]
    g_before = [p.detach().clone() for p in tr.generator.parameters()]
    tr.d_step(tr.generator(lr_img).detach(), hr_img)
    assert all(p.grad is None for p in tr.generator.parameters())
    assert all(torch.equal(a, b) for a, b in zip(g_before, tr.generator.parameters()))
    d_after = [p.detach().clone() for p in tr.discriminator.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(d_before, d_after))
    tr.discriminator.zero_grad(set_to_none=True)
    tr.g_step(tr.generator(lr_img), hr_img)
    assert all(p.grad is None for p in tr.discriminator.parameters())
    assert all(torch.equal(a, b) for a, b in zip(d_after, tr.discriminator.parameters()))
    assert all(p.requires_grad for p in tr.discriminator.parameters())  # unfrozen again
    assert any(not torch.equal(a, b) for a, b in zip(g_before, tr.generator.parameters()))


def test_corrupt_last_checkpoint_falls_back_to_prev(reference, tmp_path):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(reference, run_dir)
    (run_dir / "generator.pt").unlink()
    (run_dir / "last.pt").write_bytes(b"not a checkpoint")
    assert checkpoint.load_checkpoint(run_dir)["step"] == 6  # prev.pt
    g, _ = checkpoint.load_generator(run_dir)  # no generator.pt: the newest readable checkpoint
    with pytest.raises(CheckpointError, match="last.pt"):
        checkpoint.load_generator(run_dir / "last.pt")
    with pytest.raises(CheckpointError, match="nothing.pt"):
        checkpoint.load_generator(tmp_path / "nothing.pt")


def test_cuda_request_without_cuda_is_config_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        distributed.resolve_device("cuda")


def test_checkpoint_of_another_config_is_refused_even_without_config_json(tmp_path):
    folder = tmp_path / "hr"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        images.save_image(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), folder / f"{i}.png")
    cfg = config.get_profile("smoke").config(scale=4, crop_size=24, train_data=str(folder), val_images=0,
                                             warmup_iters=0, gan_iters=2, ckpt_every=1, device="cpu")
    run = tmp_path / "run"
    train.train(cfg, run, progress=False)
    (run / "generator.pt").unlink()
    (run / "config.json").unlink()
    with pytest.raises(ConfigError, match="num_feat"):
        train.train(dataclasses.replace(cfg, num_feat=cfg.num_feat * 2), run, progress=False)


@pytest.mark.equality
def test_a_run_continuing_a_shared_warmup_is_the_run_from_scratch(reference, env):
    # srgan_lib.grid trains the MSE warm-up once per (scale, crop, seed) and continues it for every TV
    # setting; the continued run must be the run trained from scratch, to the bit (same process,
    # same kernels in the same order: no rounding difference to allow for)
    root, cfg = env
    warm = train.train(grid.warmup_config(cfg), root / "runs" / "warm", progress=False)
    forked = train.train(cfg, root / "runs" / "forked", progress=False, start_from=warm)
    _assert_same_weights(forked, reference)
    assert _losses(forked) == _losses(reference)
    assert (forked / "warmup_generator.pt").is_file()
    # the MSE-only control continues it too, and equals its own run from scratch
    control = grid.control_config(cfg)
    a = train.train(control, root / "runs" / "control_forked", progress=False, start_from=warm)
    b = train.train(control, root / "runs" / "control_scratch", progress=False)
    _assert_same_weights(a, b)
    # a different TV weight in the GAN phase is a different result (the comparison above can fail)
    strong = train.train(dataclasses.replace(cfg, tv_weight=1.0), root / "runs" / "strong_tv", progress=False,
                         start_from=warm)
    ga = torch.load(strong / "generator.pt", weights_only=True)["generator"]
    gb = torch.load(reference / "generator.pt", weights_only=True)["generator"]
    assert any(not torch.equal(ga[k], gb[k]) for k in ga)


def test_a_warmup_of_another_run_is_refused(reference, env):
    root, cfg = env
    warm = train.train(grid.warmup_config(dataclasses.replace(cfg, seed=1)), root / "runs" / "warm_s1",
                       progress=False)
    with pytest.raises(ConfigError, match="seed"):
        train.train(cfg, root / "runs" / "wrong_fork", progress=False, start_from=warm)
    with pytest.raises(ConfigError, match="no finished MSE warm-up"):
        train.train(cfg, root / "runs" / "no_fork", progress=False, start_from=reference)
