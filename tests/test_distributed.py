"""Data-parallel training on the CPU: 2 gloo processes on 127.0.0.1 vs 1 process.

One spawn of two workers (``import torch`` costs seconds per process) checks
both claims of ``srgan_lib.distributed``: a 2-process run equals a 1-process run
with the combined batch, and a checkpoint written under one world size resumes
under the other.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from srgan_lib import config, distributed, images, train
from srgan_lib.checkpoint import GENERATOR, LAST, PREV


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cfg(folder: Path) -> config.TrainConfig:
    return config.get_profile("smoke").config(
        scale=4, crop_size=24, seed=3, train_data=str(folder), val_images=0, batch_size=4,
        warmup_iters=2, gan_iters=4, ckpt_every=2, log_every=1, device="cpu", tv_weight=1e-3)


def _worker(rank: int, world: int, ports: list[int], cfg: config.TrainConfig, jobs: list[str]) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1")
    torch.set_num_threads(1)
    for port, run_dir in zip(ports, jobs):
        os.environ["MASTER_PORT"] = str(port)
        train.train(cfg, Path(run_dir), resume=True, progress=False)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / GENERATOR, weights_only=True)["generator"]


def _rewind(src: Path, dst: Path) -> Path:
    """A copy of a finished run stopped at its previous checkpoint."""
    shutil.copytree(src, dst)
    (dst / GENERATOR).unlink()
    os.replace(dst / PREV, dst / LAST)
    return dst


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k].float(), b[k].float(), rtol=1e-4, atol=1e-5, msg=lambda m: f"{k}: {m}")


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory) -> Path:
    from srgan_lib import samples

    folder = tmp_path_factory.mktemp("hr")
    photo = samples.load_sample(samples.available("train")[0])
    for i in range(6):
        images.save_image(np.ascontiguousarray(photo[40 * i: 40 * i + 48, 50:98]), folder / f"{i}.png")
    return folder


def test_two_processes_equal_one_with_the_combined_batch_and_resume_across(images_dir, tmp_path):
    cfg = _cfg(images_dir)
    torch.set_num_threads(1)
    single = train.train(cfg, tmp_path / "single", progress=False)
    resumed_in_two = _rewind(single, tmp_path / "single_then_two")
    double = tmp_path / "double"

    ctx = mp.get_context("spawn")
    ports = [_free_port(), _free_port()]
    procs = [ctx.Process(target=_worker, args=(r, 2, ports, cfg, [str(double), str(resumed_in_two)]))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]

    reference = _weights(single)
    _assert_same(_weights(double), reference)  # 2 x batch 2 == 1 x batch 4
    _assert_same(_weights(resumed_in_two), reference)  # 1-process checkpoint, resumed by 2
    resumed_in_one = train.train(cfg, _rewind(double, tmp_path / "double_then_one"), progress=False)
    _assert_same(_weights(resumed_in_one), reference)  # 2-process checkpoint, resumed by 1


def test_allreduce_batchnorm_is_batchnorm_without_a_group():
    bn = torch.nn.BatchNorm2d(3)
    torch.nn.init.uniform_(bn.weight)
    mine = distributed.sync_batchnorm(torch.nn.Sequential(bn), torch.device("cpu"))[0]
    assert isinstance(mine, distributed.AllReduceBatchNorm2d)
    assert mine.state_dict().keys() == bn.state_dict().keys()  # checkpoints move between world sizes
    x = torch.randn(4, 3, 5, 5)
    torch.testing.assert_close(mine(x), torch.nn.functional.batch_norm(
        x, None, None, bn.weight, bn.bias, training=True, eps=bn.eps))


def test_batch_per_gpu_scales_with_world_size(monkeypatch, images_dir, tmp_path, capsys):
    from srgan_lib import cli

    monkeypatch.setenv("WORLD_SIZE", "1")
    code = cli.main(["train", "--profile", "smoke", "--data", str(images_dir), "--crop", "24", "--batch-per-gpu",
                     "3", "--runs", str(tmp_path), "--quiet", "--device", "cpu"])
    assert code == 0
    stored = config.TrainConfig.from_dict(json.loads(next(tmp_path.glob("*/config.json")).read_text()))
    assert stored.batch_size == 3
