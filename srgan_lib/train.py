"""The SRGAN training loop: MSE warm-up (optional), then alternating D and G updates.

``notebooks/04_training.ipynb`` explains the alternating updates and shows a run.

One iteration of the GAN phase (paper sec. 3.2 and 4; Goodfellow et al.):

1. ``sr = G(lr)``.
2. **D step**: D sees the HR crops and ``sr.detach()`` (no gradient reaches G)
   and minimises eq. (8) as binary cross-entropy (``losses.discriminator_loss``).
3. **G step**: with D's parameters frozen (``requires_grad`` off, so D gets no
   gradient and only G's optimiser steps) G minimises the perceptual loss,
   eq. (1) + TV (``losses.GeneratorLoss`` with D's logits of ``sr``).

The optional warm-up (``cfg.warmup_iters`` steps at ``cfg.warmup_lr``; Ledig et
al.'s SRResNet pre-training) trains G on the pixel MSE alone; G's Adam state is
started afresh when the GAN phase begins. Both optimisers are Adam(lr, betas)
(paper sec. 4).

Reproducibility: seeds are set once (:func:`srgan_lib.config.seed_everything`);
the batch of step k depends only on (seed, k) (:func:`srgan_lib.batches.train_batches`);
checkpoints hold every state including the RNGs, so a run killed at any moment
and resumed ends with the same weights as one never stopped (on the same
machine, CPU: bit for bit).

Under ``torchrun`` (several processes) the run is data-parallel: see
:mod:`srgan_lib.distributed` for the design (global batch sliced by rank, DDP,
synchronised BN); files are written, and validation run, by rank 0 only.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import batches, config, data, datasets, distributed, evaluate, grid, runlog
from .checkpoint import (
    GENERATOR,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    save_generator,
    set_rng_state,
)
from .errors import ConfigError, UserError
from .fileio import atomic_write, atomic_write_text, check_writable
from .runlog import LOSS_KEYS, RunLog
from .trainer import Trainer
from .upscale import upscale

logger = logging.getLogger(__name__)

__all__ = ["train", "Trainer", "DivergenceError"]

WARMUP_G = "warmup_generator.pt"  #: the SRResNet at the end of the warm-up, kept beside the GAN's result


class DivergenceError(UserError, FloatingPointError):
    """A loss became NaN or infinite; the run stopped, its last good checkpoint kept."""


def train(cfg: config.TrainConfig, run_dir=None, resume: bool = True, progress: bool = True,
          on_checkpoint: Callable[[int, torch.nn.Module], None] | None = None, start_from=None) -> Path:
    """Train one run (see the module docstring); return its folder.

    Args:
        cfg: the run's config (one cell of the ablation grid).
        run_dir: the run's folder (default ``config.runs_dir(cfg.profile) / grid.run_name(cfg)``).
        resume: continue from the folder's newest checkpoint; with False a folder
            that holds checkpoints is an error (a finished run is never retrained).
        progress: show a ``tqdm.auto`` bar with the losses and ETA.
        on_checkpoint: called as ``on_checkpoint(step, generator)`` after each
            checkpoint is written (e.g. to keep snapshots for a figure).
        start_from: a finished MSE-only run (``srgan_lib.grid.warmup_config``) whose last
            checkpoint a new run continues instead of repeating its warm-up: the result is
            that of the run trained from scratch (same initialisation, batches and optimiser
            state; ``srgan_lib.grid`` shares one warm-up between the runs of a seed).

    Returns:
        Path: the run folder, holding ``config.json``, ``meta.json``,
        ``metrics.csv``, ``val.csv``, ``tb/``, ``last.pt``/``prev.pt`` and
        ``generator.pt`` (plus ``warmup_generator.pt`` after a warm-up).

    Raises:
        ConfigError: bad device, a folder holding another run, or checkpoints without ``resume``.
        DataError: missing data folders. DivergenceError: a NaN/inf loss.
    """
    run_dir = Path(run_dir) if run_dir is not None else config.runs_dir(cfg.profile) / grid.run_name(cfg)
    device = distributed.resolve_device(cfg.device)
    if device.type == "cuda" and distributed.env_world_size() > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    info = distributed.setup(device)
    try:
        return _train(cfg, run_dir, device, info, resume, progress and info.is_main, on_checkpoint, start_from)
    finally:
        distributed.teardown(info)


def _train(cfg, run_dir, device, info, resume, progress, on_checkpoint, start_from=None) -> Path:
    # every rank reads the folder before rank 0 writes anything into it
    finished = runlog.check_run_dir(run_dir, cfg) and (run_dir / GENERATOR).is_file()
    distributed.barrier(info)
    if finished:
        if progress:
            logger.info(f"{run_dir}: finished already (generator.pt present); not training again")
        return run_dir
    folders = (datasets.data_folder(cfg.train_data, "train"),
               datasets.data_folder(cfg.val_data, "val") if cfg.val_images > 0 else None)
    ckpt = load_checkpoint(run_dir) if run_dir.is_dir() else None
    if ckpt is not None:  # also when config.json was lost: the checkpoint carries its own config
        runlog.require_same_config(ckpt["config"], cfg, run_dir)
    if ckpt is not None and not resume:
        raise ConfigError(f"{run_dir} holds a checkpoint at step {ckpt['step']}: pass --resume "
                          "(resume=True) to continue it, or delete the folder to start again")
    if info.is_main:
        check_writable(run_dir)
    forked = ckpt is None and start_from is not None
    if forked:
        ckpt = runlog.warmup_checkpoint(Path(start_from), cfg)
        if info.is_main:  # the warm-up's log rows (so that this run's curves start at step 0) and its SRResNet
            for name, target in (("metrics.csv", "metrics.csv"), ("val.csv", "val.csv"), (GENERATOR, WARMUP_G)):
                if (Path(start_from) / name).is_file():
                    atomic_write(run_dir / target, lambda tmp, src=Path(start_from) / name: shutil.copyfile(src, tmp))
    config.seed_everything(cfg.seed, cfg.deterministic)
    if device.type == "cuda" and not cfg.deterministic:
        torch.backends.cudnn.benchmark = True
    dataset = data.TrainDataset(folders[0], cfg.scale, cfg.crop_size, augment=cfg.augment,
                                resize_method=cfg.resize_method, progress=progress)
    trainer = Trainer(cfg, device, info)
    step, wall_before = 0, 0.0
    if ckpt is not None:
        trainer.load_state_dict(ckpt)
        set_rng_state(ckpt["rng"])
        step, wall_before = int(ckpt["step"]), float(ckpt["wall_time"])
    if (ckpt is None or forked) and info.is_main:
        atomic_write_text(run_dir / runlog.CONFIG, cfg.to_json() + "\n")
    log_window = ckpt.get("log_window", {"keys": [], "rows": []}) if ckpt is not None else None
    return _Loop(cfg, run_dir, trainer, dataset, folders, step, wall_before, log_window,
                 progress, on_checkpoint).run()


class _Loop:
    """The loop of :func:`train`: steps, logging, validation, checkpoints."""

    def __init__(self, cfg, run_dir, trainer, dataset, folders, step, wall_before, log_window, progress,
                 on_ckpt):
        self.cfg, self.run_dir, self.trainer, self.dataset, self.folders = cfg, run_dir, trainer, dataset, folders
        self.step, self.wall_before, self.on_ckpt = step, wall_before, on_ckpt
        resumed = log_window is not None
        # the current log window: checked rows on the host (restored on resume, so that the means
        # logged after a resume equal those of a run never stopped) and rows still on the device
        self.keys, self.window = (log_window["keys"], log_window["rows"]) if resumed else ([], [])
        self.pending: list[torch.Tensor] = []
        self.dist = trainer.dist
        self.is_main = self.dist.is_main  # rank 0 writes every file
        self.log = RunLog(run_dir, resume_step=step if resumed else None) if self.is_main else None
        self.bar = tqdm(total=cfg.total_iters, initial=step, desc=grid.run_name(cfg), disable=not progress,
                        unit="it", dynamic_ncols=True)
        self.start = time.perf_counter()

    def _every(self, n: int) -> bool:
        return n > 0 and self.step % n == 0

    def wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.start

    def run(self) -> Path:
        cfg, trainer = self.cfg, self.trainer
        device = trainer.device
        self._meta(finished=False)
        stream = batches.train_batches(self.dataset, cfg.batch_size, cfg.seed, start_step=self.step, device=device,
                                       rank=self.dist.rank, world_size=self.dist.world_size)
        try:
            while self.step < cfg.total_iters:
                phase = trainer.phase_at(self.step)
                lr_img, hr_img = next(stream)
                terms = distributed.mean_terms(self.dist, trainer.step(lr_img, hr_img, self.step))
                self.keys = [k for k in LOSS_KEYS if k in terms]
                # stays on the device: checked (one host sync) at the next log, validation or checkpoint,
                # so that the GPU never waits for the host between steps
                self.pending.append(torch.stack([terms[k].float() for k in self.keys]))
                self.step += 1
                self.bar.update(1)
                end_of_phase = self.step == cfg.warmup_iters or self.step == cfg.total_iters
                if self._every(cfg.log_every) or end_of_phase:
                    self._log(phase)
                if cfg.val_images > 0 and (self._every(cfg.val_every) or self.step == cfg.total_iters):
                    self._check(phase)
                    self._validate()
                if self.step == cfg.warmup_iters and cfg.gan_iters > 0 and self.is_main:
                    self._check(phase)
                    # the SRResNet of the warm-up, kept to compare with the GAN's result (issue 8)
                    save_generator(self.run_dir / WARMUP_G, trainer.generator, cfg, self.step)
                if self._every(cfg.ckpt_every) or end_of_phase:
                    self._check(phase)
                    self._checkpoint()
            if self.is_main:
                save_generator(self.run_dir / GENERATOR, trainer.generator, cfg, self.step)
                self._meta(finished=True)
            distributed.barrier(self.dist)
        finally:
            self.bar.close()
            if self.log is not None:
                self.log.close()
        return self.run_dir

    def _check(self, phase: str) -> None:
        """Move the pending steps' terms to the host; stop at the first NaN/inf, naming its step and term."""
        if not self.pending:
            return
        host = torch.stack(self.pending).cpu()
        first = self.step - len(self.pending) + 1  # 1-based step of the oldest pending row
        finite = torch.isfinite(host)
        if not bool(finite.all()):
            row = int((~finite.all(dim=1)).nonzero()[0])
            col = int((~finite[row]).nonzero()[0])
            raise DivergenceError(
                f"{self.run_dir}: loss term {self.keys[col]} is {host[row, col].item()} at step {first + row} "
                f"({phase} phase); the last good checkpoint (last.pt) is kept: lower the learning rate or "
                "check the data, then resume")
        self.window.extend(host.tolist())
        self.pending = []

    def _log(self, phase: str) -> None:
        self._check(phase)
        n = len(self.window)
        values = {k: sum(row[i] for row in self.window) / n for i, k in enumerate(self.keys)}
        self.window = []
        lr = self.trainer.opt_g.param_groups[0]["lr"]
        if self.log is not None:
            self.log.log_losses(self.step, phase, values, lr, self.wall())
        shown = {k: values[k] for k in ("g_total", "d_total", "d_x", "d_g_z") if k in values}
        self.bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()}, refresh=False)

    def _validate(self) -> None:
        if not self.is_main:  # rank 0 validates; the others wait for it
            distributed.barrier(self.dist)
            return
        gen = self.trainer.generator
        res = evaluate.evaluate_images(self.folders[1], self.cfg.scale, protocol="standard",
                                       upscale_fn=lambda lr: upscale(gen, lr, tile=config.TILE),
                                       resize_method=self.cfg.resize_method, limit=self.cfg.val_images,
                                       max_side=self.cfg.val_max_side)
        if self.log is not None:
            self.log.log_val(self.step, res.values)
        self.bar.set_postfix_str(f"val {res.values['psnr']:.2f} dB", refresh=False)
        distributed.barrier(self.dist)

    def _checkpoint(self) -> None:
        if self.is_main:
            state = self.trainer.state_dict()
            state.update(step=self.step, phase=self.trainer.phase_at(self.step), rng=rng_state(),
                         wall_time=self.wall(), config=self.cfg.to_dict(),
                         log_window={"keys": list(self.keys), "rows": self.window})
            save_checkpoint(self.run_dir, state)
            self._meta(finished=False)
        distributed.barrier(self.dist)
        if self.on_ckpt is not None and self.is_main:
            self.on_ckpt(self.step, self.trainer.generator)

    def _meta(self, finished: bool) -> None:
        if self.is_main:
            runlog.write_meta(self.run_dir, self.trainer, self.folders, self.trainer.device, self.wall(), self.step,
                        finished)
