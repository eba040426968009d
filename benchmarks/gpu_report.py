"""GPU performance report (issue 7): step speed, precision, data pipeline margin, grid projection.

On one GPU, in one run (well under 10 minutes on an H100):

1. iterations/s of the profile's training step (GAN phase: G forward, D step,
   G step) at every crop and scale, fp32 (PyTorch defaults: TF32 convolutions)
   vs bf16 autocast + channels_last, and with ``--compile`` also
   ``torch.compile``-d networks;
2. samples/s of the data pipeline (``data.train_batches`` on the GPU: uint8
   crops from the decoded-image cache, LR made on the device) against what the
   training step consumes (it/s x batch);
3. inference speed of the generator on a validation-sized image, to project
   evaluation;
4. the projected wall time of the whole grid (12 runs of ``total_iters``
   iterations + evaluation of each run and of bicubic under both protocols on
   DIV2K's 100 validation images).

The batches are synthetic for 1 and real for 2 (DIV2K when ``data/DIV2K`` is
present, else the real DIV2K image in ``../shared/data`` replicated). VGG
weights are random (the same compute as ImageNet's). The last line is

``RESULT bf16_speedup=<x> pipeline_margin=<x> grid_minutes=<n> device=<name>``

where ``bf16_speedup`` is the geometric mean over cells of bf16/fp32 and
``pipeline_margin`` the smallest ratio of pipeline samples/s to the step's
consumption. Targets (issue 7): >= 1.8x, >= 3x, < 15 minutes on one H100.

    python benchmarks/gpu_report.py [--compile]                     # on a CUDA machine
    python benchmarks/gpu_report.py --device cpu --profile smoke    # dry run of every code path
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle OpenMP threads sleep

import torch  # noqa: E402

from srgan_lib import config, data, models  # noqa: E402
from srgan_lib.trainer import Trainer  # noqa: E402

#: DIV2K validation: 100 images of ~2040 x 1400 (the set the paper's tables use).
DIV2K_VAL_IMAGES, DIV2K_VAL_PIXELS = 100, 2040 * 1404


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_rate(cfg: config.TrainConfig, device: torch.device, warm: int, iters: int, compile_: bool) -> float:
    """Iterations/s of ``Trainer.step`` in the GAN phase on synthetic batches already on the device."""
    config.seed_everything(0, cfg.deterministic)
    tr = Trainer(cfg, device)
    if compile_:
        tr.g_net = torch.compile(tr.g_net)
        tr.d_net = torch.compile(tr.d_net)
    lr_img = torch.rand(cfg.batch_size, 3, cfg.crop_size // cfg.scale, cfg.crop_size // cfg.scale, device=device)
    hr_img = torch.rand(cfg.batch_size, 3, cfg.crop_size, cfg.crop_size, device=device)
    for i in range(warm):
        tr.step(lr_img, hr_img, i)
    _sync(device)
    start = time.perf_counter()
    for i in range(iters):
        terms = tr.step(lr_img, hr_img, warm + i)
    bool(torch.isfinite(terms["g_total"]))  # one host sync, as the training loop does at a log step
    _sync(device)
    return iters / (time.perf_counter() - start)


def pipeline_rate(folder: Path, cfg: config.TrainConfig, device: torch.device, seconds: float) -> float:
    """Samples/s of ``data.train_batches`` (cache decoded beforehand) producing batches on ``device``."""
    ds = data.TrainDataset(folder, cfg.scale, cfg.crop_size, resize_method=cfg.resize_method, progress=False)
    batches = data.train_batches(ds, cfg.batch_size, cfg.seed, device=device)
    next(batches)
    _sync(device)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        lr_img, _ = next(batches)
        n += lr_img.shape[0]
    _sync(device)
    return n / (time.perf_counter() - start)


def inference_seconds_per_mpix(cfg: config.TrainConfig, device: torch.device) -> float:
    """Seconds of generator inference per HR megapixel (bf16 on CUDA), on a 128 x 128 LR input."""
    from srgan_lib.upscale import upscale

    g = models.Generator(cfg.scale, cfg.num_feat, cfg.num_block, cfg.upsample_skip).to(device).eval()
    lr = torch.rand(1, 3, 128, 128, device=device)
    upscale(g, lr)
    _sync(device)
    start, reps = time.perf_counter(), 3
    for _ in range(reps):
        upscale(g, lr)
    _sync(device)
    return (time.perf_counter() - start) / reps / ((128 * cfg.scale) ** 2 / 1e6)


def training_folder(tmp: Path, copies: int = 16) -> Path:
    """DIV2K's training folder when downloaded, else the shared DIV2K image replicated."""
    try:
        return config.data_folder("div2k", "train")
    except Exception:  # not downloaded: fall back loudly
        src = ROOT.parent / "shared" / "data" / "DIV2K_samples" / "DIV2K_train_HR" / "0004.png"
        if not src.is_file():
            raise SystemExit(f"neither data/DIV2K nor {src} exists: run `make data` or pass --data DIR")
        print(f"NOTE: data/DIV2K absent; the pipeline is measured on {src.name} replicated {copies} times")
        for i in range(copies):
            shutil.copy(src, tmp / f"{i:04d}.png")
        return tmp


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--profile", default="paper", choices=("smoke", "quick", "paper"))
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile-d networks (bf16)")
    ap.add_argument("--data", metavar="DIR", help="training images for the pipeline measurement")
    ap.add_argument("--pipeline-seconds", type=float, default=3.0)
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_report: CUDA is not available; run it on a GPU machine (or --device cpu for a dry run)",
              file=sys.stderr)
        return 2
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    profile = config.get_profile(args.profile)
    base = profile.base
    print(f"device {name}, torch {torch.__version__}; profile {profile.name}: batch {base.batch_size}, "
          f"G {base.num_block}x{base.num_feat}, VGG19 {base.vgg_layer} (random weights), "
          f"{base.total_iters} iterations a run", flush=True)

    rates, speedups, margins = {}, [], []
    with tempfile.TemporaryDirectory(prefix="srgan-gpu-report-") as tmp:
        folder = Path(args.data) if args.data else training_folder(Path(tmp))
        for scale in profile.scales:
            for crop in profile.crop_sizes:
                cfg = profile.config(scale=scale, crop_size=crop, vgg_weights="random", device=args.device,
                                     warmup_iters=0, train_data=str(folder))
                fp32 = step_rate(dataclasses.replace(cfg, amp_bf16=False, channels_last=False), device,
                                 args.warm, args.iters, False)
                bf16 = step_rate(cfg, device, args.warm, args.iters, False)
                comp = step_rate(cfg, device, args.warm, args.iters, True) if args.compile else float("nan")
                pipe = pipeline_rate(folder, cfg, device, args.pipeline_seconds)
                best = max(bf16, comp) if args.compile else bf16
                rates[(scale, crop)] = best
                speedups.append(bf16 / fp32)
                margins.append(pipe / (best * cfg.batch_size))
                print(f"x{scale} crop {crop}: fp32 {fp32:.2f} it/s | bf16+channels_last {bf16:.2f} it/s "
                      f"({bf16 / fp32:.2f}x)" + (f" | compiled {comp:.2f} it/s" if args.compile else "")
                      + f" | pipeline {pipe:.0f} samples/s = {margins[-1]:.1f}x the step's "
                      f"{best * cfg.batch_size:.0f}", flush=True)
                if device.type == "cuda":
                    torch.cuda.empty_cache()

    grid = config.ablation_grid(profile)
    train_s = sum(c.total_iters / rates[(c.scale, c.crop_size)] for c in grid)
    # evaluation: every run + bicubic, both protocols, DIV2K validation (bicubic is cheap: counted as a run)
    per_run_eval = sum(inference_seconds_per_mpix(profile.config(scale=s), device) for s in profile.scales) \
        / len(profile.scales) * DIV2K_VAL_IMAGES * DIV2K_VAL_PIXELS / 1e6 * 2
    grid_min = (train_s + per_run_eval * (len(grid) + 1)) / 60
    speedup = math.exp(sum(math.log(s) for s in speedups) / len(speedups))
    print(f"projected grid: training {train_s / 60:.1f} min + evaluation {per_run_eval * (len(grid) + 1) / 60:.1f} "
          f"min ({len(grid)} runs x {grid[0].total_iters} iterations)")
    print(f"RESULT bf16_speedup={speedup:.2f} pipeline_margin={min(margins):.1f} grid_minutes={grid_min:.1f} "
          f"device={name.replace(' ', '_')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
