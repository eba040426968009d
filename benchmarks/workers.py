"""Runs at once on a CPU: one run on every core against one single-thread run per core.

``srgan_lib.ablation.train_runs`` trains the quick profile's runs ``Profile.workers`` at a time
(0: one per core), each in one thread. This measures why: the steps per second of the whole
machine (a) with one process using every core (torch's intra-op threads) and (b) with one
single-thread process per core, for an MSE warm-up step and a GAN step of the quick profile
(x2, crops 128 and 88), in the same session, one after the other.

Usage::

    .venv/bin/python benchmarks/workers.py [--steps 8]

Prints one line per setting and ``RESULT mse_speedup=<b/a> gan_speedup=<b/a> cores=<n>``
(steps per second of the machine, b over a; > 1: single-thread workers are faster).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the Makefile sets it

CHILD = r"""
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from srgan_lib import batches, config, data, datasets
from srgan_lib.trainer import Trainer
profile = config.get_profile("quick")
for phase, crop in (("mse", 128), ("gan", 88)):
    cfg = profile.config(scale=2, crop_size=crop, warmup_iters=1000 if phase == "mse" else 0, vgg_weights="random")
    ds = data.TrainDataset(datasets.data_folder(cfg.train_data, "train"), 2, crop, progress=False)
    trainer = Trainer(cfg)
    steps = [batches.make_batch(ds, k, cfg.batch_size, 0) for k in range(int(sys.argv[2]) + 1)]
    trainer.step(*steps[0], 0)
    start = time.perf_counter()
    for k in range(1, len(steps)):
        trainer.step(*steps[k], k)
    print(phase, (len(steps) - 1) / (time.perf_counter() - start), flush=True)
"""


def rates(threads: int, processes: int, steps: int) -> dict[str, float]:
    """Steps per second of the machine: ``processes`` children at once, each with ``threads`` threads."""
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(threads), str(steps)], stdout=subprocess.PIPE,
                                 text=True) for _ in range(processes)]
    total: dict[str, float] = {}
    for child in children:
        out, _ = child.communicate()
        if child.returncode:
            raise SystemExit(f"a child failed (exit {child.returncode})")
        for line in out.splitlines():
            phase, rate = line.split()
            total[phase] = total.get(phase, 0.0) + float(rate)
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per phase and process")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    t0 = time.perf_counter()
    one = rates(cores, 1, args.steps)
    many = rates(1, cores, args.steps)
    for label, r in ((f"1 process x {cores} threads", one), (f"{cores} processes x 1 thread", many)):
        print(f"{label}: " + ", ".join(f"{k} {v:.2f} steps/s" for k, v in r.items()))
    print(f"RESULT mse_speedup={many['mse'] / one['mse']:.2f} gan_speedup={many['gan'] / one['gan']:.2f} "
          f"cores={cores} seconds={time.perf_counter() - t0:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
