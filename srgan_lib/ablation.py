"""The experiments of notebooks 05 and 06: train what is missing, score every run, build the tables.

The runs are those of :func:`srgan_lib.grid.plan`: the paper's grid (scale x crop x
TV x seed), the MSE-only control and the TV study, with one shared MSE warm-up per
(scale, crop, seed). :func:`train_runs` trains only what is missing:
:func:`srgan_lib.train.train` returns a finished run (``generator.pt`` present)
untouched and resumes an interrupted one, so an interrupted reproduction continues
where it stopped, and runs trained elsewhere (``srgan train`` in a job array, same
run names) are picked up. :func:`estimate_seconds` says beforehand how long the
missing runs will take, from two timed steps of each kind measured on this machine.

:mod:`srgan_lib.scoring` scores every run and bicubic (cached per run), and
:func:`build_tables` makes Tables 1 and 2 (:mod:`srgan_lib.tables`) with seeds, the
control and paired differences (:mod:`srgan_lib.stats`).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import batches, config, data, datasets, distributed, grid, tables
from .checkpoint import GENERATOR
from .protocols import PROTOCOLS
from .scoring import Scored, read_meta, score_runs
from .train import train
from .trainer import Trainer

logger = logging.getLogger(__name__)


@dataclass
class AblationResult:
    """What :func:`run_ablation` produced: run folders, scores, tables and their files."""

    profile: config.Profile
    run_dirs: dict[str, Path]
    scored: list[Scored]
    tables: list[tables.Table]
    files: dict[str, Path] = field(default_factory=dict)


def runs_root(profile: config.Profile, root=None) -> Path:
    return Path(root) if root is not None else config.runs_dir(profile.name)


def missing(runs: list[grid.Run], root: Path) -> list[grid.Run]:
    """The runs of ``runs`` whose folder under ``root`` holds no finished ``generator.pt``."""
    return [r for r in runs if not (root / r.name / GENERATOR).is_file()]


def _seconds_per_step(cfg: config.TrainConfig, phase: str, device) -> float:
    """Seconds of one training step of ``cfg`` in ``phase`` (one thread on a CPU), timed over 2 steps."""
    cfg = grid.mse_only(cfg, 3) if phase == "mse" else dataclasses.replace(cfg, warmup_iters=0)
    dataset = data.TrainDataset(datasets.data_folder(cfg.train_data, "train"), cfg.scale, cfg.crop_size,
                                resize_method=cfg.resize_method, progress=False)
    with distributed.one_thread(device):
        trainer = Trainer(cfg, device)
        steps = [batches.make_batch(dataset, k, cfg.batch_size, cfg.seed, device) for k in range(3)]
        trainer.step(*steps[0], 0)
        start = time.perf_counter()
        for k in (1, 2):
            trainer.step(*steps[k], k)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - start) / 2


def estimate_seconds(runs: list[grid.Run], device="auto", workers: int = 1) -> float:
    """How long training ``runs`` will take here: each (scale, crop, phase) timed over two steps, the sum
    divided among ``workers`` runs at a time.

    The timing trains throw-away networks for a few seconds; nothing is written. The steps a
    run takes over from its warm-up (``Run.start_step``) are not counted.
    """
    dev = distributed.resolve_device(device)
    cost: dict[tuple, float] = {}
    total = 0.0
    for r in runs:
        cfg = r.cfg
        for phase, n in (("mse", cfg.warmup_iters - r.start_step), ("gan", cfg.gan_iters)):
            key = (cfg.scale, cfg.crop_size, phase)
            if n > 0 and key not in cost:
                cost[key] = _seconds_per_step(cfg, phase, dev)
            total += n * cost.get(key, 0.0)
    return total / max(1, min(workers, len(runs)))


def _train_one(cfg_dict: dict, run_dir: str, start_from: str | None) -> str:
    """One run, in a worker process (or in this one): one thread on a CPU, no progress bar."""
    cfg = config.TrainConfig.from_dict(cfg_dict)
    with distributed.one_thread(distributed.resolve_device(cfg.device)):
        start = Path(start_from) if start_from else None
        train(cfg, run_dir=Path(run_dir), resume=True, progress=False, start_from=start)
    return run_dir


def train_runs(profile: config.Profile, seeds: tuple[int, ...] | None = None, kinds=grid.KINDS, root=None,
               progress: bool = True, workers: int | None = None) -> dict[str, Path]:
    """Train every missing run of ``profile``'s experiments; return ``{run name: folder}``.

    On a CPU several runs train at once (:func:`srgan_lib.distributed.cpu_workers`), each in its own
    process and thread, a run only after the warm-up it continues; every run computes in one thread however many share the machine,
    so its numbers do not depend on ``workers``. The workers are started with ``spawn``: a script that
    calls this with ``workers > 1`` needs the usual ``if __name__ == "__main__":`` guard (the ``srgan``
    command and notebooks need nothing).

    Args:
        profile: the profile.
        seeds: default ``profile.seeds``.
        kinds: which experiments (:data:`srgan_lib.grid.KINDS`; warm-ups come with the runs needing them).
        root: the runs folder (default :func:`srgan_lib.config.runs_dir`).
        progress: a line with the estimate, then a bar over the runs.
        workers: runs at once (default :func:`srgan_lib.distributed.cpu_workers`); 1 trains in this process.
    """
    root = runs_root(profile, root)
    runs = grid.plan(profile, seeds, kinds)
    todo = missing(runs, root)
    out = {r.name: root / r.name for r in runs}
    if not todo:
        return out
    n = workers or distributed.cpu_workers(profile.workers, profile.base.device)
    for spec, split in ((profile.base.train_data, "train"), (profile.base.val_data, "val")):
        datasets.data_folder(spec, split)  # made here once (the samples, a union), not by two workers at a time
    if progress:
        minutes = estimate_seconds(todo, profile.base.device, n) / 60
        logger.info(f"training {len(todo)} of {len(runs)} runs, {n} at a time: about {minutes:.1f} min here "
                    f"(the others are finished in {root})")
    bar = tqdm(total=len(todo), desc="runs", unit="run", disable=not progress, dynamic_ncols=True)
    jobs = [(r, (r.cfg.to_dict(), str(root / r.name), str(root / r.start_from) if r.start_from else None))
            for r in todo]
    try:
        if n == 1:
            for r, args in jobs:
                bar.set_postfix_str(r.name)
                _train_one(*args)
                bar.update(1)
        else:
            _train_parallel(jobs, n, {r.name for r in runs} - {r.name for r in todo}, bar)
    finally:
        bar.close()
    return out


def _train_parallel(jobs: list, n: int, finished: set[str], bar) -> None:
    """Run ``jobs`` in ``n`` worker processes, each job once the warm-up it continues is ``finished``."""
    pending = list(jobs)
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
        running: dict = {}
        while pending or running:
            for job in list(pending):
                run, args = job
                if len(running) < n and (run.start_from is None or run.start_from in finished):
                    running[pool.submit(_train_one, *args)] = run
                    pending.remove(job)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                run = running.pop(future)
                future.result()  # a worker's error (a diverged run, a bad folder) stops here, with its message
                finished.add(run.name)
                bar.set_postfix_str(run.name)
                bar.update(1)


def schedule_text(profile: config.Profile) -> str:
    """One sentence comparing the profile's network and schedule with the paper profile's."""
    b, p = profile.base, config.PROFILES["paper"].base
    return (f"Training: G {b.num_block} blocks x {b.num_feat} features (paper: {p.num_block} x {p.num_feat}), "
            f"{b.warmup_iters} MSE warm-up + {b.gan_iters} GAN iterations at batch {b.batch_size} "
            f"(paper profile: {p.warmup_iters} + {p.gan_iters} at batch {p.batch_size}), VGG layer {b.vgg_layer}, "
            f"TV weight {b.tv_weight:g}, bicubic skip `{b.upsample_skip}`, seeds {', '.join(map(str, profile.seeds))}.")


def build_tables(profile: config.Profile, scored: list[Scored], run_dirs: dict[str, Path] | None = None,
                 ) -> list[tables.Table]:
    """Tables 1-2 per protocol from the grid's cells and the controls in ``scored`` (other runs are left out)."""
    vgg = {name: read_meta(d).get("vgg_weights_used", "unknown") for name, d in (run_dirs or {}).items()}
    base = profile.base
    out = []
    for protocol in [p for p in PROTOCOLS if any(s.protocol == p for s in scored)]:
        for scale in sorted({s.scale for s in scored if s.protocol == protocol}):
            group = [s for s in scored if s.protocol == protocol and s.scale == scale]
            bicubic = next((s.result for s in group if s.cfg is None), None)
            runs: dict = {}
            control: dict = {}
            for s in group:
                if s.cfg is None:
                    continue
                if s.method == grid.run_name(grid.control_config(profile.config(
                        scale=scale, crop_size=s.cfg.crop_size, seed=s.cfg.seed))):
                    control[s.cfg.seed] = s.result
                elif s.method == grid.run_name(profile.config(scale=scale, crop_size=s.cfg.crop_size,
                                                              use_tv=s.cfg.use_tv, seed=s.cfg.seed)):
                    runs.setdefault((s.cfg.crop_size, s.cfg.use_tv), {})[s.cfg.seed] = s.result
            count = bicubic.count if bicubic is not None else group[0].result.count
            note = tables.footnote(profile.name, protocol, base.val_data, count,
                                   train_data=base.train_data if runs else None,
                                   vgg_weights_used={k: v for k, v in vgg.items() if f"_x{scale}_" in k} or None,
                                   schedule=schedule_text(profile) if runs else None)
            out.append(tables.build_table(scale, protocol, bicubic, runs, note, crop_sizes=profile.crop_sizes,
                                          control=control or None, control_crop=profile.study_crop,
                                          comparable=base.val_data == "div2k" and protocol == "paper"))
    return out


def write_tables(profile: config.Profile, built: list[tables.Table], out_dir=None) -> dict[int, tuple[Path, Path]]:
    """Write Tables 1-2 (Markdown + CSV) under ``out_dir`` (default ``<results>/tables``)."""
    folder = Path(out_dir) if out_dir is not None else config.results_dir(profile.name) / "tables"
    return tables.write_tables(built, folder, heading=f"Profile `{profile.name}`: {profile.description}.")


def run_ablation(profile: config.Profile | None = None, seeds: tuple[int, ...] | None = None, root=None,
                 results=None, progress: bool = True) -> AblationResult:
    """Train what is missing of the grid and the control, score everything, write the CSVs and Tables 1-2.

    Args:
        profile: default :func:`srgan_lib.config.get_profile`.
        seeds: default the profile's.
        root: folder of runs (default ``config.runs_dir(profile.name)``).
        results: results folder (default ``config.results_dir(profile.name)``).
        progress: the estimate, progress bars and per-run lines.
    """
    profile = profile or config.get_profile()
    results = Path(results) if results is not None else config.results_dir(profile.name)
    kinds = ("grid", "control")
    wanted = {r.name for r in grid.plan(profile, seeds, kinds) if r.kind in kinds}  # not the warm-ups
    run_dirs = {n: d for n, d in train_runs(profile, seeds, kinds, root, progress).items() if n in wanted}
    scored = score_runs(profile, run_dirs, out_dir=results / "eval", progress=progress)
    built = build_tables(profile, scored, run_dirs)
    files = {}
    for md, csv_path in write_tables(profile, built, results / "tables").values():
        files[md.name], files[csv_path.name] = md, csv_path
    return AblationResult(profile, run_dirs, scored, built, files)

