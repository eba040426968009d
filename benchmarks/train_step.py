"""Trainer overhead and tiled-inference memory, on the CPU.

CPU part (always):

1. Iterations/s of :func:`srgan_lib.train.train` (the whole loop: batches made
   from the image store, NaN check, CSV/TensorBoard logging every ``log_every``
   steps, progress bar off) against a bare loop written by hand over the same
   networks, initial weights, loss, optimisers and crops (made beforehand). The
   trainer's rate is read from its own ``metrics.csv`` clock between two logged
   steps, so start-up (VGG, image decoding) is excluded; bare and trainer runs
   alternate (bare, trainer, bare, trainer, bare) and the medians are compared,
   because the load of a shared machine drifts. Target: overhead <= 10 %.
2. Peak resident memory (``ru_maxrss``) of upscaling a 1024 x 1024 input x4,
   untiled and tiled (256 LR pixels), each in a fresh child process (the two
   run side by side to save time; each reports its own peak). The generator
   has the paper's 64 features (which set the memory: the x4 upsampler's
   256-channel maps) but 2 residual blocks instead of 16 (they add compute,
   not memory, since activations are freed layer by layer). Target: <= 2.5 GB tiled.

The GPU measurements (step speed per crop and scale, fp32 vs bf16, the
trainer's overhead on a GPU, the grid's projection) are in
``benchmarks/gpu_report.py``, which reuses :func:`trainer_overhead`.

Ends with ``RESULT overhead=<fraction> tiled_peak_gb=<x> untiled_peak_gb=<y>``.

    .venv/bin/python benchmarks/train_step.py            # CPU part, ~2-3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from srgan_lib import config, data, distributed, losses, models  # noqa: E402
from srgan_lib.batches import make_batch  # noqa: E402
from srgan_lib.trainer import Trainer  # noqa: E402


def bare_rate(cfg: config.TrainConfig, device, batches: list, warm: int) -> float:
    """Iterations/s of the plainest GAN loop on the trainer's networks, initial weights and batches.

    A fresh ``Trainer`` (same seed, so the same initial weights as ``train()``'s) runs over
    ``batches`` (made beforehand: the same crops ``train()`` sees) with no data making, no
    checks and no logging; the first ``warm`` steps are not timed.
    """
    config.seed_everything(cfg.seed, cfg.deterministic)
    trainer = Trainer(cfg, device)
    g, d, loss, opt_g, opt_d = trainer.generator, trainer.discriminator, trainer.loss, trainer.opt_g, trainer.opt_d
    batches = [trainer.prepare(lr_img, hr_img) for lr_img, hr_img in batches]
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    for k, (lr_img, hr_img) in enumerate(batches):
        if k == warm:
            sync()
            start = time.perf_counter()
        with trainer._autocast():
            sr = g(lr_img)
            d_loss = losses.discriminator_loss(d(hr_img).float(), d(sr.detach()).float())["d_total"]
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        with models.frozen(d), trainer._autocast():
            g_loss = loss(sr.float(), hr_img, d(sr).float())["g_total"]
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
    sync()
    return (len(batches) - warm) / (time.perf_counter() - start)


def trainer_overhead(cfg: config.TrainConfig, warm: int, iters: int, rounds: int = 2) -> dict:
    """Rates of train() and of the bare loop for ``cfg`` (GAN phase only), alternating ``rounds`` times.

    Bare, trainer, bare, trainer, ..., bare: on a shared machine the load drifts, so each
    trainer run sits between two bare runs and the medians are compared. Both do the same
    arithmetic (same seed, same crops); the trainer also makes its batches, checks for NaN,
    logs every ``log_every`` steps and writes a checkpoint at its end (outside the timed window).
    """
    cfg = dataclasses.replace(cfg, warmup_iters=0, gan_iters=warm + iters, val_images=0, ckpt_every=100,
                              log_every=5)
    assert warm % cfg.log_every == 0 and iters % cfg.log_every == 0
    from srgan_lib import train

    device = distributed.resolve_device(cfg.device)
    ds = data.TrainDataset(cfg.train_data, cfg.scale, cfg.crop_size, progress=False)
    batches = [make_batch(ds, k, cfg.batch_size, cfg.seed, device=device) for k in range(warm + iters)]
    bares, trainers = [bare_rate(cfg, device, batches, warm)], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = train.train(cfg, Path(tmp) / "run", progress=False)
            with open(run_dir / "metrics.csv", newline="") as f:
                times = {int(r["step"]): float(r["time"]) for r in csv.DictReader(f)}
        trainers.append(iters / (times[warm + iters] - times[warm]))
        bares.append(bare_rate(cfg, device, batches, warm))
    return {"trainer": trainers, "bare": bares,
            "overhead": statistics.median(bares) / statistics.median(trainers) - 1}


def _mem_child(mode: str, num_feat: int, num_block: int, side: int) -> None:
    """In a fresh process: upscale a side x side input x4, print the peak RSS."""
    from srgan_lib.upscale import receptive_radius, upscale

    torch.manual_seed(0)
    g = models.Generator(scale=4, num_feat=num_feat, num_block=num_block).eval()
    lr = torch.rand(1, 3, side, side)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    start = time.perf_counter()
    sr = upscale(g, lr, tile=256 if mode == "tiled" else None)
    secs = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"MEM mode={mode} peak_gb={peak:.3f} before_gb={base:.3f} seconds={secs:.1f} "
          f"out={tuple(sr.shape)} radius={receptive_radius(g)}")


def peak_memory(modes, num_feat: int, num_block: int, side: int) -> dict:
    """Peak RSS (GB) per mode, each in its own fresh process; the processes run side by side."""
    procs = {}
    for mode in modes:
        cmd = [sys.executable, __file__, "--mem-child", mode, "--mem-feat", str(num_feat), "--mem-block",
               str(num_block), "--mem-side", str(side), "--threads",
               str(max(1, torch.get_num_threads() // len(modes)))]  # side by side: share the cores
        procs[mode] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks = {}
    for mode, proc in procs.items():
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"memory child {mode} failed ({proc.returncode}): {err[-2000:]}")
        line = next(ln for ln in out.splitlines() if ln.startswith("MEM "))
        print("  " + line)
        peaks[mode] = float(line.split("peak_gb=")[1].split()[0])
    return peaks


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=20, help="timed iterations of the overhead measurement")
    ap.add_argument("--mem-side", type=int, default=1024, help="side of the LR input of the memory test")
    ap.add_argument("--mem-feat", type=int, default=64)
    ap.add_argument("--mem-block", type=int, default=2)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's). On a loaded machine use 1: "
                    "OpenMP threads that wait for busy cores slow every step down many times")
    ap.add_argument("--mem-child", choices=("tiled", "untiled"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mem_child:
        _mem_child(args.mem_child, args.mem_feat, args.mem_block, args.mem_side)
        return 0
    os.environ.setdefault("SRGAN_DATA", str(Path(tempfile.gettempdir()) / "srgan_bench_data"))
    t0 = time.perf_counter()
    # a moderate model, pinned here so that the numbers stay comparable when the profiles change
    cfg = config.get_profile("quick").config(scale=4, crop_size=64, batch_size=8, num_feat=16, num_block=4,
                                              d_num_feat=16, d_fc=128, vgg_layer="conv2_2",
                                              vgg_weights="random", device="cpu")
    print(f"CPU: {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"trainer vs bare loop: G {cfg.num_feat}x{cfg.num_block} blocks, D {cfg.d_num_feat}/{cfg.d_fc}, "
          f"VGG {cfg.vgg_layer}, batch {cfg.batch_size}, crop {cfg.crop_size}, x{cfg.scale}, {args.iters} iterations")
    ov = trainer_overhead(cfg, warm=5, iters=args.iters)
    print(f"  trainer {', '.join(f'{r:.3f}' for r in ov['trainer'])} it/s; bare loop "
          f"{', '.join(f'{r:.3f}' for r in ov['bare'])} it/s (runs alternate bare, trainer, bare, ...) "
          f"-> overhead of the medians {ov['overhead'] * 100:+.1f} %")
    print(f"inference x4 of {args.mem_side}x{args.mem_side}, G {args.mem_feat} features, {args.mem_block} blocks, "
          "peak RSS of a fresh process:")
    peaks = peak_memory(("tiled", "untiled"), args.mem_feat, args.mem_block, args.mem_side)
    tiled, untiled = peaks["tiled"], peaks["untiled"]
    print(f"CPU part took {time.perf_counter() - t0:.0f} s")
    print(f"RESULT overhead={ov['overhead']:.4f} tiled_peak_gb={tiled:.3f} untiled_peak_gb={untiled:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
