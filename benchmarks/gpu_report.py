"""GPU performance report (issue 7): step speed, precision, data pipeline margin, grid projection.

On one GPU, in one run (well under 10 minutes on an H100):

1. iterations/s of the profile's training step (GAN phase: G forward, D step,
   G step) at every crop and scale, fp32 (PyTorch defaults: TF32 convolutions)
   vs mixed precision + channels_last (bf16 autocast, or fp16 with gradient
   scaling on a card without native bf16: ``srgan_lib.trainer.amp_dtype``), and
   with ``--compile`` also ``torch.compile``-d networks (at one cell, or
   ``--compile all``; ``--compile-mode reduce-overhead`` replays each network's
   kernels as CUDA graphs, meant for the cells the host's kernel launches limit:
   UNMEASURED, added without a GPU in issue 15, no number recorded yet);
2. samples/s of the data pipeline (``batches.train_batches`` for the GPU: crops
   from the decoded-image cache and their LR made one step ahead by a background thread,
   copied from page-locked memory) against what the training step consumes
   (it/s x batch);
3. the trainer's overhead: ``train()`` (batches, NaN checks, logging) against a
   bare loop over the same batches, at x4 crop 88 (``benchmarks/train_step.py``'s
   measurement);
4. the grid's evaluation, end to end (``evaluate.evaluate_methods``, as
   ``ablation.evaluate_grid`` runs it: decode, LR, tiled upscaling of bicubic
   and the scale's 6 runs, metrics under both protocols), in seconds per
   validation image for each scale;
5. the projected wall time of the Tables' grid (scales x crops x TV x the
   profile's seeds, ``total_iters`` iterations each, + the evaluation of each run
   and of bicubic under both protocols on DIV2K's 100 validation images).

The batches are synthetic for 1 and real for 2-4 (DIV2K when ``data/DIV2K`` is
present, else the real 2040 x 1344 DIV2K image tracked in ``data/DIV2K_samples`` replicated,
which the output says). VGG
weights are random (the same compute as ImageNet's). The last line is

``RESULT amp_speedup=<x> precision=<bf16|fp16> pipeline_margin=<x> grid_minutes=<n> device=<name>``

where ``amp_speedup`` (``bf16_speedup`` in records before issue 15) is the
geometric mean over cells of mixed precision / fp32 and
``pipeline_margin`` the smallest ratio of pipeline samples/s to the step's
consumption. Targets (issue 7): >= 1.8x, >= 3x, < 15 minutes on one H100.

    python benchmarks/gpu_report.py [--compile]                     # on a CUDA machine, ~3-4 minutes
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

from srgan_lib import config, data, datasets, grid, models  # noqa: E402
from srgan_lib.batches import train_batches  # noqa: E402
from srgan_lib.trainer import PRECISION_NAMES, Trainer, amp_dtype  # noqa: E402

#: DIV2K validation: 100 images of ~2040 x 1400 (the set the paper's tables use).
DIV2K_VAL_IMAGES = 100


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_rate(cfg: config.TrainConfig, device: torch.device, warm: int, iters: int, compile_: bool,
              mode: str | None = None) -> float:
    """Iterations/s of ``Trainer.step`` in the GAN phase on synthetic batches already on the device
    (with ``compile_``: G and D ``torch.compile``-d in ``mode``, e.g. ``"reduce-overhead"``)."""
    config.seed_everything(0, cfg.deterministic)
    tr = Trainer(cfg, device)
    if compile_:
        tr.g_net = torch.compile(tr.g_net, mode=mode)
        tr.d_net = torch.compile(tr.d_net, mode=mode)
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


def pipeline_rate(folder: Path, cfg: config.TrainConfig, device: torch.device, seconds: float,
                  prefetch: int = 1) -> float:
    """Samples/s of ``batches.train_batches`` (cache decoded beforehand) producing batches on ``device``."""
    ds = data.TrainDataset(folder, cfg.scale, cfg.crop_size, resize_method=cfg.resize_method, progress=False)
    batches = train_batches(ds, cfg.batch_size, cfg.seed, device=device, prefetch=prefetch)
    next(batches)
    _sync(device)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        lr_img, _ = next(batches)
        n += lr_img.shape[0]
    _sync(device)
    return n / (time.perf_counter() - start)


def eval_seconds_per_image(profile: config.Profile, folder: Path, device: torch.device) -> dict:
    """Seconds per validation image of the grid's evaluation at each scale, measured end to end.

    Runs what :func:`srgan_lib.ablation.evaluate_grid` runs for one scale: one
    :func:`srgan_lib.evaluate.evaluate_methods` pass (decode, each protocol's LR
    made once, bicubic and every run of that scale upscaled in tiles and scored
    under both protocols on ``device``) over the images of ``folder``, with as
    many generators (random weights: same compute) as the grid has runs at the
    scale. Returns ``{scale: seconds per image}``.
    """
    from srgan_lib.evaluate import evaluate_methods
    from srgan_lib.upscale import upscale

    cells = grid.ablation_grid(profile)
    out = {}
    for scale in profile.scales:
        cfg = profile.config(scale=scale)
        methods = {"bicubic": None}
        for c in (c for c in cells if c.scale == scale):
            g = models.Generator(cfg.scale, cfg.num_feat, cfg.num_block, cfg.upsample_skip).to(device).eval()
            methods[grid.run_name(c)] = lambda lr, g=g: upscale(g, lr, tile=config.TILE)
        start = time.perf_counter()
        res = evaluate_methods(folder, scale, methods, device=device)
        _sync(device)
        count = next(iter(res.values())).count
        out[scale] = (time.perf_counter() - start) / count
        print(f"evaluation x{scale}: {len(methods)} methods x 2 protocols, {out[scale]:.2f} s per validation image "
              f"({count} images)", flush=True)
    return out


def sample_div2k(tmp: Path, copies: int) -> Path:
    """A folder of ``copies`` copies of the real DIV2K image tracked in ``data/`` (when DIV2K is not downloaded)."""
    src = ROOT / "data" / "DIV2K_samples" / "DIV2K_train_HR" / "0004.png"
    if not src.is_file():
        raise SystemExit(f"neither data/DIV2K nor {src} exists: run `make data` or pass --data DIR")
    tmp.mkdir(parents=True, exist_ok=True)
    for i in range(copies):
        shutil.copy(src, tmp / f"{i:04d}.png")
    return tmp


def dataset_folder(tmp: Path, split: str, copies: int) -> Path:
    """DIV2K's ``split`` folder when downloaded, else the tracked DIV2K sample image replicated (said so)."""
    try:
        return datasets.data_folder("div2k", split)
    except Exception:  # not downloaded: fall back loudly
        print(f"NOTE: data/DIV2K absent; DIV2K {split} is stood in for by data/DIV2K_samples' 0004.png x {copies}")
        return sample_div2k(tmp / split, copies)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--profile", default="paper", choices=("smoke", "quick", "paper"))
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--compile", metavar="SxC", nargs="?", const="4x88",
                    help="also time torch.compile-d networks (mixed precision) at this cell (default 4x88, the "
                         "one the host's kernel launches limit), or 'all'")
    ap.add_argument("--compile-mode", choices=("default", "reduce-overhead"), default="default",
                    help="torch.compile's mode; reduce-overhead replays CUDA graphs (UNMEASURED: no GPU number "
                         "recorded for it yet)")
    ap.add_argument("--data", metavar="DIR", help="training images for the pipeline measurement")
    ap.add_argument("--pipeline-seconds", type=float, default=3.0)
    ap.add_argument("--eval-images", type=int, default=2, help="validation images timed (when DIV2K is absent: copies of the shared image)")
    ap.add_argument("--overhead-iters", type=int, default=40,
                    help="timed iterations of train() vs the bare loop at x4 crop 88 (0: skip)")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_report: CUDA is not available; run it on a GPU machine (or --device cpu for a dry run)",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    profile = config.get_profile(args.profile)
    base = profile.base
    print(f"device {name}, torch {torch.__version__}, {os.cpu_count()} CPU cores; profile {profile.name}: batch "
          f"{base.batch_size}, G {base.num_block}x{base.num_feat}, VGG19 {base.vgg_layer} (random weights), "
          f"{base.total_iters} iterations a run", flush=True)

    amp = PRECISION_NAMES.get(amp_dtype(device), "fp32")  # what Trainer picks for this card (bf16 or fp16)
    amp_label = f"{amp}+channels_last" if device.type == "cuda" else "fp32 (CPU: no autocast)"
    mode = None if args.compile_mode == "default" else args.compile_mode
    rates, speedups, margins = {}, [], []
    with tempfile.TemporaryDirectory(prefix="srgan-gpu-report-") as tmp:
        folder = Path(args.data) if args.data else dataset_folder(Path(tmp), "train", 16)
        for scale in profile.scales:
            for crop in profile.crop_sizes:
                cfg = profile.config(scale=scale, crop_size=crop, vgg_weights="random", device=args.device,
                                     warmup_iters=0, train_data=str(folder))
                fp32 = step_rate(dataclasses.replace(cfg, amp=False, channels_last=False), device,
                                 args.warm, args.iters, False)
                bf16 = step_rate(cfg, device, args.warm, args.iters, False)  # mixed precision: bf16 or fp16
                compiled = args.compile in ("all", f"{scale}x{crop}")
                comp = step_rate(cfg, device, args.warm, args.iters, True, mode) if compiled else float("nan")
                pipe = pipeline_rate(folder, cfg, device, args.pipeline_seconds)
                best = max(bf16, comp) if compiled else bf16
                rates[(scale, crop)] = best
                speedups.append(bf16 / fp32)
                margins.append(pipe / (best * cfg.batch_size))
                print(f"x{scale} crop {crop}: fp32 {fp32:.2f} it/s | {amp_label} {bf16:.2f} it/s "
                      f"({bf16 / fp32:.2f}x)" + (f" | compiled ({args.compile_mode}) {comp:.2f} it/s "
                                                 f"({comp / bf16:.2f}x {amp})" if compiled else "")
                      + f" | pipeline {pipe:.0f} samples/s = {margins[-1]:.1f}x the step's "
                      f"{best * cfg.batch_size:.0f}", flush=True)
                if device.type == "cuda":
                    torch.cuda.empty_cache()

        worst = min(range(len(margins)), key=margins.__getitem__)
        wcfg = profile.config(scale=profile.scales[worst // len(profile.crop_sizes)],
                              crop_size=profile.crop_sizes[worst % len(profile.crop_sizes)])
        sweep = {n: pipeline_rate(folder, wcfg, device, args.pipeline_seconds, prefetch=n) for n in (1, 2, 4)}
        print(f"pipeline at x{wcfg.scale} crop {wcfg.crop_size} by prefetch threads (the default is 1): "
              + ", ".join(f"{n}: {r:.0f}" for n, r in sweep.items()) + " samples/s", flush=True)

        if args.overhead_iters:
            from train_step import (
                trainer_overhead,  # benchmarks/ is this script's folder
            )

            ocfg = profile.config(scale=4, crop_size=88, vgg_weights="random", device=args.device,
                                  train_data=str(folder))
            ov = trainer_overhead(ocfg, warm=10, iters=args.overhead_iters, rounds=2)
            print(f"train() vs bare loop (x4 crop 88, {amp_label}): trainer "
                  f"{', '.join(f'{r:.2f}' for r in ov['trainer'])} it/s; bare "
                  f"{', '.join(f'{r:.2f}' for r in ov['bare'])} it/s -> overhead {ov['overhead'] * 100:+.1f} %",
                  flush=True)

        val = dataset_folder(Path(tmp), "val", args.eval_images)
        per_image = eval_seconds_per_image(profile, val, device)

    cells = grid.ablation_grid(profile)
    train_s = sum(c.total_iters / rates[(c.scale, c.crop_size)] for c in cells)
    eval_s = DIV2K_VAL_IMAGES * sum(per_image.values())  # evaluate_grid: one pass over the images per scale
    grid_min = (train_s + eval_s) / 60
    speedup = math.exp(sum(math.log(s) for s in speedups) / len(speedups))
    print(f"projected grid: training {train_s / 60:.1f} min + evaluation {eval_s / 60:.1f} min "
          f"({len(cells)} runs x {cells[0].total_iters} iterations; {DIV2K_VAL_IMAGES} validation images)")
    print(f"report took {time.perf_counter() - t0:.0f} s")
    print(f"RESULT amp_speedup={speedup:.2f} precision={amp} pipeline_margin={min(margins):.1f} "
          f"grid_minutes={grid_min:.1f} device={name.replace(' ', '_')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
