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
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

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
    """Seconds of one training step of ``cfg`` in ``phase``, timed over 2 steps after a first one."""
    cfg = grid.mse_only(cfg, 3) if phase == "mse" else dataclasses.replace(cfg, warmup_iters=0)
    dataset = data.TrainDataset(datasets.data_folder(cfg.train_data, "train"), cfg.scale, cfg.crop_size,
                                resize_method=cfg.resize_method, progress=False)
    trainer = Trainer(cfg, device)
    steps = [batches.make_batch(dataset, k, cfg.batch_size, cfg.seed, device) for k in range(3)]
    trainer.step(*steps[0], 0)
    start = time.perf_counter()
    for k in (1, 2):
        trainer.step(*steps[k], k)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / 2


def estimate_seconds(runs: list[grid.Run], device="auto") -> float:
    """How long training ``runs`` will take here: each (scale, crop, phase) timed over two steps.

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
    return total


def train_runs(profile: config.Profile, seeds: tuple[int, ...] | None = None, kinds=grid.KINDS, root=None,
               progress: bool = True) -> dict[str, Path]:
    """Train every missing run of ``profile``'s experiments; return ``{run name: folder}``.

    Args:
        profile: the profile.
        seeds: default ``profile.seeds``.
        kinds: which experiments (:data:`srgan_lib.grid.KINDS`; warm-ups come with the runs needing them).
        root: the runs folder (default :func:`srgan_lib.config.runs_dir`).
        progress: a line with the estimate, then progress bars.
    """
    root = runs_root(profile, root)
    runs = grid.plan(profile, seeds, kinds)
    todo = missing(runs, root)
    if todo and progress:
        minutes = estimate_seconds(todo, profile.base.device) / 60
        logger.info(f"training {len(todo)} of {len(runs)} runs: about {minutes:.1f} min here "
                    f"(the others are finished in {root})")
    out = {}
    for r in runs:
        start = root / r.start_from if r.start_from else None
        out[r.name] = train(r.cfg, run_dir=root / r.name, resume=True, progress=progress and r in todo,
                            start_from=start)
    return out


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

