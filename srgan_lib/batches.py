"""Training batches as tensors on a device, made ahead by a background thread for an accelerator.

:class:`srgan_lib.data.TrainDataset` makes the uint8 ``(lr, hr)`` of a step on the
CPU (:meth:`~srgan_lib.data.TrainDataset.host_batch`); this module turns them into
float tensors where the networks run. For a GPU, batches are made ahead by a
background thread and copied from page-locked memory while the GPU trains; on the
CPU they are made in the caller's thread. Either way batch ``k`` is the same, so
the prefetching never changes a run (``tests/test_batches.py``).
"""

from __future__ import annotations

import collections
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .data import SAMPLING_MODES, TrainDataset
from .errors import ConfigError


def to_device(host: tuple, device="cpu", pinned: bool = False):
    """uint8 NHWC ``(lr, hr)`` (arrays or tensors) -> float32 ``N x 3 x h x w`` tensors in ``[0, 1]`` on ``device``.

    On the CPU NumPy (one thread) converts: torch's intra-op threads cost more
    than they save on tensors this small, ~10x more on a busy machine. On an
    accelerator only the uint8 bytes travel (a quarter of float32's; from
    page-locked memory, asynchronously, when ``pinned``) and are converted
    there; the result has channels-last strides, which the trainer's
    ``channels_last`` networks take as they are.
    """
    if torch.device(device).type == "cpu":
        return tuple(torch.from_numpy(np.divide(np.asarray(a).transpose(0, 3, 1, 2), 255, dtype=np.float32))
                     for a in host)
    out = []
    for a in host:
        # a tensor pinned by torch itself, so that its allocator keeps the buffer until the copy is done
        t = a if isinstance(a, torch.Tensor) else torch.from_numpy(a)
        if pinned and not t.is_pinned():
            t = t.pin_memory()
        out.append(t.to(device, non_blocking=pinned).permute(0, 3, 1, 2).float().div_(255.0))
    return tuple(out)


def make_batch(dataset: TrainDataset, step: int, batch_size: int, seed: int, device="cpu", rank: int = 0,
               world_size: int = 1, sampling: str = "epoch"):
    """The ``(lr, hr)`` batch of ``step`` for ``rank``: :meth:`TrainDataset.host_batch` on ``device``.

    Returns:
        (lr, hr): ``N x 3 x (crop/scale) x (crop/scale)`` and ``N x 3 x crop x crop``
        float32 in ``[0, 1]`` on ``device`` (``N = batch_size // world_size``).
    """
    return to_device(dataset.host_batch(step, batch_size, seed, rank, world_size, sampling), device)


def train_batches(dataset: TrainDataset, batch_size: int, seed: int, start_step: int = 0,
                  device="cpu", rank: int = 0, world_size: int = 1, sampling: str = "epoch",
                  prefetch: int = 1):
    """Infinite iterator of training batches, step ``start_step``, ``start_step + 1``, ...

    Args:
        dataset: a :class:`~srgan_lib.data.TrainDataset`.
        batch_size: the GLOBAL batch size; each of ``world_size`` ranks gets
            ``batch_size // world_size`` samples (must divide evenly).
        seed: with the step number, the only source of randomness.
        start_step: the first step (resume from a checkpoint's step).
        device: where the batch lives.
        rank, world_size: this process's slice of the global batch (DDP).
        sampling: ``"epoch"`` (paper: a seeded permutation of the images per epoch,
            wrapping into the next epoch so that every batch is full) or ``"random"``.
        prefetch: on an accelerator, batches made ahead by as many background
            threads (0: made in the caller's thread). One is the fastest: on a
            16-core H100 host, 2, 4 and 8 threads made 14 %, 31 % and 46 % fewer
            samples/s than one (``benchmarks/gpu_report.py``), and more threads
            also slow the main thread's kernel launches. The batches are the same
            either way; on the CPU they are always made in the caller's thread,
            which would otherwise compete with the training step for the cores.

    Yields:
        (lr, hr): ``N x 3 x (crop/scale) x (crop/scale)`` and ``N x 3 x crop x crop``
        float32 in ``[0, 1]`` on ``device`` (``N = batch_size // world_size``).
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size}: use a positive integer")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"rank={rank}, world_size={world_size}: need 0 <= rank < world_size")
    if batch_size % world_size:
        raise ConfigError(f"batch_size={batch_size} is not divisible by world_size={world_size}: "
                          "every rank must get an equal slice of the global batch")
    if sampling not in SAMPLING_MODES:
        raise ConfigError(f"sampling={sampling!r}: use one of {SAMPLING_MODES}")
    if start_step < 0:
        raise ConfigError(f"start_step={start_step}: use a step >= 0")
    if prefetch < 0:
        raise ConfigError(f"prefetch={prefetch}: use 0 (no background threads) or more")

    if torch.device(device).type == "cpu" or prefetch == 0:
        def generate():
            step = start_step
            while True:
                yield make_batch(dataset, step, batch_size, seed, device, rank, world_size, sampling)
                step += 1

        return generate()
    return _prefetched(dataset, batch_size, seed, start_step, device, rank, world_size, sampling, prefetch)


def _prefetched(dataset, batch_size, seed, start_step, device, rank, world_size, sampling, prefetch):
    """``train_batches`` for an accelerator: host batches made ahead by ``prefetch`` threads.

    Each batch depends only on its step, so the threads cannot change what is
    made or its order; they overlap the cropping and downscaling (NumPy, which
    releases the GIL) with the GPU's work, and keep the main thread free to
    launch kernels. The pool is shut down when the iterator is closed.
    """
    pin = torch.device(device).type == "cuda"  # page-locked memory is CUDA's (and copies from it asynchronous)

    def make(step):
        host = [torch.from_numpy(a) for a in dataset.host_batch(step, batch_size, seed, rank, world_size, sampling)]
        return tuple(t.pin_memory() for t in host) if pin else tuple(host)

    pool = ThreadPoolExecutor(max_workers=prefetch, thread_name_prefix="srgan-batches")
    try:
        queue = collections.deque(pool.submit(make, start_step + k) for k in range(prefetch))
        step = start_step + prefetch
        while True:
            host = queue.popleft().result()
            queue.append(pool.submit(make, step))
            step += 1
            yield to_device(host, device, pinned=pin)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
