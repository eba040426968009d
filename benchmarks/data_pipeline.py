"""Training-data throughput: srgan_lib.data vs the naive pipeline, side by side in one run.

The naive pipeline is the one of the public code the paper was built on
(leftthomas/SRGAN): for every sample it decodes the whole PNG, takes a
torchvision ``RandomCrop`` and makes the LR by PIL bicubic ``Resize`` of the
crop. Ours decodes each image once (``srgan_lib.cache``), crops views and
makes the LR of a whole batch at once (MATLAB bicubic as two matrix products).

Both run in this process, on the same files: the real DIV2K image
``data/DIV2K_samples/DIV2K_train_HR/0004.png`` (2040 x 1344, tracked)
replicated by symlinks to a few dozen files in a temporary folder; crop 88, x4,
batch 16. The one-time decode of our cache is reported separately and not
counted in the steady-state rate. Ends with one line::

    RESULT speedup=<ours/naive> ours_sps=<n> naive_sps=<n>

Usage: ``python benchmarks/data_pipeline.py [--files 32] [--seconds 5] [--cache ram|mmap] [--device cpu|cuda]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_IMAGE = ROOT / "data" / "DIV2K_samples" / "DIV2K_train_HR" / "0004.png"


def naive_batches(files, crop: int, scale: int, batch_size: int, seed: int = 0):
    """leftthomas/SRGAN's TrainDatasetFromFolder + default collation, without worker processes."""
    import random

    import torch
    from PIL import Image
    from torchvision.transforms import Compose, RandomCrop, Resize, ToPILImage, ToTensor

    hr_transform = Compose([RandomCrop(crop), ToTensor()])
    lr_transform = Compose([ToPILImage(), Resize(crop // scale, interpolation=Image.BICUBIC), ToTensor()])
    rng = random.Random(seed)
    torch.manual_seed(seed)
    while True:
        lrs, hrs = [], []
        for _ in range(batch_size):
            hr = hr_transform(Image.open(files[rng.randrange(len(files))]))  # whole PNG decoded per crop
            lrs.append(lr_transform(hr))
            hrs.append(hr)
        yield torch.stack(lrs), torch.stack(hrs)


def rate(batches, batch_size: int, seconds: float, warmup: int = 2, max_batches: int = 100_000) -> tuple[float, int]:
    """Samples per second of an iterator over at least ``seconds`` (after ``warmup`` batches)."""
    import torch

    def sync(batch):  # GPU work is asynchronous: count a batch when it is really made
        if batch[0].is_cuda:
            torch.cuda.synchronize()

    for _ in range(warmup):
        sync(next(batches))
    n, start = 0, time.perf_counter()
    while n < max_batches:
        batch = next(batches)
        n += 1
        if time.perf_counter() - start >= seconds:
            break
    sync(batch)
    elapsed = time.perf_counter() - start
    return n * batch_size / elapsed, n * batch_size


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--files", type=int, default=32, help="copies (symlinks) of the image")
    parser.add_argument("--crop", type=int, default=88)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time of each pipeline")
    parser.add_argument("--cache", default="ram", choices=("ram", "mmap"), help="our decoded-image cache")
    parser.add_argument("--device", default="cpu", help="where our LR is made and our batches live (cpu, cuda)")
    args = parser.parse_args(argv)
    if not args.image.is_file():
        print(f"{args.image} is absent: pass --image PATH of a large PNG", file=sys.stderr)
        return 2

    from srgan_lib import batches, data

    with tempfile.TemporaryDirectory(prefix="srgan-bench-") as tmp:
        folder = Path(tmp) / "hr"
        folder.mkdir()
        for i in range(args.files):
            os.symlink(args.image.resolve(), folder / f"{i:04d}.png")
        files = sorted(folder.iterdir())

        t0 = time.perf_counter()
        ds = data.TrainDataset(folder, args.scale, args.crop, cache=args.cache, cache_dir=Path(tmp) / "cache",
                               progress=False)
        decode_s = time.perf_counter() - t0
        ours_sps, ours_n = rate(batches.train_batches(ds, args.batch, seed=0, device=args.device), args.batch,
                                 args.seconds)
        naive_sps, naive_n = rate(naive_batches(files, args.crop, args.scale, args.batch), args.batch,
                                  args.seconds, warmup=1)

    print(f"image: {args.image} x {args.files} files; crop {args.crop}, x{args.scale}, batch {args.batch}; "
          f"cpus: {os.cpu_count()}; ours on {args.device}")
    print(f"ours : {ours_sps:10.1f} samples/s  ({ours_n} samples; one-time decode of {len(ds)} images "
          f"({args.cache}): {decode_s:.1f} s, {ds.store.nbytes / 1e6:.0f} MB)")
    print(f"naive: {naive_sps:10.1f} samples/s  ({naive_n} samples; whole PNG decoded per crop, PIL bicubic)")
    print(f"RESULT speedup={ours_sps / naive_sps:.1f} ours_sps={ours_sps:.0f} naive_sps={naive_sps:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
