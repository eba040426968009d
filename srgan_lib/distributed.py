"""Multi-GPU training with PyTorch's own engine: torchrun + DistributedDataParallel.

``torchrun --nproc_per_node N -m srgan_lib.cli train ...`` starts N processes;
:func:`setup` reads torchrun's environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``) and joins the process group (NCCL on CUDA, gloo on the CPU).
The design, chosen so that an N-process run equals a 1-process run with the
combined batch (tested on the CPU with gloo in ``tests/test_distributed.py``):

* **Data**: ``TrainConfig.batch_size`` is the *global* batch; the batch of step
  ``k`` depends only on ``(seed, k)`` and rank ``r`` takes its ``r``-th slice
  (``batches.train_batches(..., rank, world_size)``), so the ranks see disjoint
  crops and a run can resume under another world size.
* **Gradients**: G and D are wrapped in ``DistributedDataParallel``, which
  averages gradients across ranks; every loss is a mean over the local batch,
  so the average equals the gradient of the global mean.
* **Batch norm**: synchronised, deliberately. Per-rank BN would normalise each
  rank's slice with its own statistics, and the result would depend on the
  world size. On CUDA we use ``nn.SyncBatchNorm``; it refuses CPU tensors, so on
  the CPU :class:`AllReduceBatchNorm2d` computes the same statistics with a
  differentiable all-reduce. Both keep ``BatchNorm2d``'s state-dict keys, so
  checkpoints move freely between world sizes.
* **Side effects**: logging, validation and checkpoints happen on rank 0 only
  (:attr:`DistInfo.is_main`); the other ranks wait at a barrier.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .config import DEVICES
from .errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size`` (``local_rank``: its GPU on this node)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistInfo()


def env_world_size() -> int:
    """The world size torchrun announced (1 when not started by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes; a no-op for a single process.

    Args:
        device: the device this process trains on (CUDA selects NCCL; the CPU, gloo).
    """
    world = env_world_size()
    if world <= 1:
        return SINGLE
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=info.rank, world_size=world,
                                timeout=datetime.timedelta(minutes=30))
    return info


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def mean_terms(info: DistInfo, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Average logged scalars over the ranks, so that rank 0 logs the global batch's values."""
    if not info.enabled or not terms:
        return terms
    keys = sorted(terms)
    stacked = torch.stack([terms[k].detach().float().reshape(()) for k in keys])
    if dist.get_backend() == "nccl":
        stacked = stacked.cuda()
    dist.all_reduce(stacked)
    stacked = (stacked / info.world_size).to(terms[keys[0]].device)
    return {k: stacked[i] for i, k in enumerate(keys)}


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose gradient is the sum over ranks of the incoming gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class AllReduceBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics cover the batch of every rank.

    Used on the CPU (gloo), where ``nn.SyncBatchNorm`` is unavailable. The sums
    of ``x`` and ``x**2`` over (N, H, W) are summed over the ranks by a
    differentiable all-reduce, so the backward pass is that of one BN over the
    combined batch.

    Args:
        x (Tensor): N x C x H x W.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        local = torch.cat([x.sum(dim=(0, 2, 3)), (x * x).sum(dim=(0, 2, 3)),
                           x.new_tensor([x.numel() / x.shape[1]])])
        total = _AllReduceSum.apply(local)
        c = x.shape[1]
        count = total[2 * c]
        mean = total[:c] / count
        var = total[c:2 * c] / count - mean * mean  # biased: what BN normalises with
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * count / (count - 1), alpha=m)
        shape = (1, c, 1, 1)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Replace every ``BatchNorm2d`` with its synchronised form (same state-dict keys)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, AllReduceBatchNorm2d):
            new = AllReduceBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                       child.track_running_stats)
            new.load_state_dict(child.state_dict())
            new.to(device=child.weight.device if child.affine else device)
            setattr(module, name, new)
        else:
            sync_batchnorm(child, device)
    return module


def wrap(module: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """``module`` with synchronised BN inside DistributedDataParallel (unchanged for one process).

    ``forward_sync_buffers=False``: with synchronised BN every rank already holds
    the same running statistics, and a broadcast per forward would cost time for nothing.
    """
    if not info.enabled:
        return module
    module = sync_batchnorm(module, device)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False)


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA if available else CPU; ``"cuda"`` without CUDA is a :class:`ConfigError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: CUDA is not available on this machine "
                          "(torch.cuda.is_available() is False); use --device cpu or auto")
    if name not in DEVICES:
        raise ConfigError(f"device={name!r}: use one of {', '.join(DEVICES)}")
    return torch.device(name)


@contextlib.contextmanager
def one_thread(device) -> Iterator[None]:
    """Torch's CPU work in one thread inside the block (a run's numbers then do not depend on how many runs
    share the machine); restored after. A GPU run is left as it is."""
    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cpu_workers(workers: int, device) -> int:
    """How many runs train (or are scored) at once, each in one thread: one on a GPU; on the CPU ``workers``,
    0 meaning one per core (``srgan_lib.config.Profile.workers``)."""
    if resolve_device(device).type != "cpu":
        return 1
    return workers or max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
