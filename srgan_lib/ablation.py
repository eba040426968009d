"""The ablation of the paper's Tables 1-2: train the grid, score it, write the tables.

``notebooks/05_ablation_evaluation.ipynb`` runs it and discusses the numbers.

The grid is scale {2, 4} x crop {88, 128, 168} x TV {on, off} x seeds
(:func:`srgan_lib.config.ablation_grid`). :func:`run_grid` trains only what is
missing: :func:`srgan_lib.train.train` returns a finished run (``generator.pt``
present) untouched and resumes an interrupted one, so an interrupted
reproduction continues where it stopped, and cells trained elsewhere (``srgan
train`` in a job array, same run names) are picked up.

:func:`evaluate_grid` scores bicubic and every run on the profile's validation
set under both protocols (``standard`` and ``paper``, see
:mod:`srgan_lib.protocols`), per image, and writes ``<results>/eval/``, with one
column per metric of :data:`srgan_lib.metrics.METRICS` (``psnr, ssim``):

* ``per_image_<protocol>.csv`` -- ``method, scale, crop_size, use_tv, seed, image, psnr, ssim``;
* ``summary.csv`` -- the set's values per method and protocol (under the
  ``paper`` protocol the set's PSNR is that of the mean MSE, not a mean of the
  per-image values, so it is stored, not recomputed).

:func:`write_tables` writes Tables 1 and 2 with :func:`srgan_lib.tables.build_table`.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from . import config, datasets, distributed, tables
from .checkpoint import load_generator
from .evaluate import evaluate_methods
from .fileio import atomic_write_text
from .metrics import METRICS
from .protocols import PROTOCOLS
from .train import train
from .upscale import upscale

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    """One method scored under one protocol.

    Attributes:
        protocol: ``"standard"`` or ``"paper"``.
        method: ``"bicubic"`` or the run name (``srgan_x4_c88_tv1_s0``).
        scale: the upscaling factor.
        result: the :class:`srgan_lib.evaluate.EvalResult` (``values``, ``per_image``).
        cfg: the run's :class:`~srgan_lib.config.TrainConfig` (None for bicubic).
    """

    protocol: str
    method: str
    scale: int
    result: object
    cfg: config.TrainConfig | None = None


@dataclass
class AblationResult:
    """What :func:`run_ablation` produced: run folders, scores, tables and their files."""

    profile: config.Profile
    run_dirs: dict[str, Path]
    scored: list[Scored]
    tables: list[tables.Table]
    files: dict[str, Path] = field(default_factory=dict)


def run_grid(profile: config.Profile, seeds: tuple[int, ...] | None = None, runs_root=None,
             progress: bool = True) -> dict[str, Path]:
    """Train every missing cell of ``profile``'s grid; return ``{run name: run folder}`` in grid order.

    Args:
        profile: the profile whose grid to run.
        seeds: the seeds (default: the profile's).
        runs_root: folder holding the runs (default :func:`srgan_lib.config.runs_dir`).
        progress: progress bars and a line per reused run.
    """
    root = Path(runs_root) if runs_root is not None else config.runs_dir(profile.name)
    out = {}
    for cfg in config.ablation_grid(profile, seeds):
        name = config.run_name(cfg)
        out[name] = train(cfg, run_dir=root / name, resume=True, progress=progress)
    return out


def validation_set(profile: config.Profile) -> tuple[Path, int | None, int | None]:
    """``(folder, limit, max_side)`` of the profile's validation set."""
    base = profile.base
    return datasets.data_folder(base.val_data, "val"), base.val_limit, base.val_max_side


def read_meta(run_dir) -> dict:
    """A run's ``meta.json`` (``vgg_weights_used``, wall time, device ...), ``{}`` when absent."""
    path = Path(run_dir) / "meta.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def evaluate_grid(profile: config.Profile, run_dirs: dict[str, Path], protocols=PROTOCOLS, out_dir=None,
                  device: str = "auto", progress: bool = True) -> list[Scored]:
    """Score bicubic and every run under each protocol; write the CSVs under ``out_dir``.

    Args:
        profile: gives the validation set.
        run_dirs: ``{run name: finished run folder}`` (from :func:`run_grid`).
        protocols: protocols to score with.
        out_dir: where the CSVs go (default ``<results>/eval``); None writes them there.
        device: where generators run (``"auto"``: CUDA when available).
        progress: print a line per method.

    Returns:
        list[Scored]: bicubic per scale, then every run, for each protocol.
    """
    dev = distributed.resolve_device(device)
    generators = {name: load_generator(run_dir, device=dev) for name, run_dir in run_dirs.items()}
    scales = sorted({cfg.scale for _, cfg in generators.values()} or set(profile.scales))
    folder, limit, max_side = validation_set(profile)
    results = {}
    for scale in scales:  # one pass over the images per scale: each decoded once, each pair made once
        methods = {"bicubic": None}
        methods.update({name: (lambda lr, g=gen: upscale(g, lr, tile=config.TILE))
                        for name, (gen, cfg) in generators.items() if cfg.scale == scale})
        for (name, protocol), res in evaluate_methods(folder, scale, methods, protocols, limit=limit,
                                                      max_side=max_side).items():
            results[(name, protocol, scale)] = res
    scored = []
    for protocol in protocols:
        scored += [Scored(protocol, "bicubic", scale, results[("bicubic", protocol, scale)]) for scale in scales]
        for name, (gen, cfg) in generators.items():
            scored.append(Scored(protocol, name, cfg.scale, results[(name, protocol, cfg.scale)], cfg))
            if progress:
                values = scored[-1].result.values
                logger.info(f"{protocol:>8}  {name}: " + "  ".join(f"{metric.label} {values[m]:.{metric.digits + 1}f}"
                                                             f"{metric.suffix}" for m, metric in METRICS.items()))
    write_eval_csv(scored, Path(out_dir) if out_dir is not None else config.results_dir(profile.name) / "eval")
    return scored


def _axes(s: Scored) -> dict:
    cfg = s.cfg
    return {"method": s.method, "scale": s.scale, "crop_size": cfg.crop_size if cfg else "",
            "use_tv": int(cfg.use_tv) if cfg else "", "seed": cfg.seed if cfg else ""}


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def _numbers(values: dict) -> dict[str, str]:
    """Every metric of ``METRICS`` in ``values``, written with 6 decimals."""
    return {m: f"{float(values[m]):.6f}" for m in METRICS}


def write_eval_csv(scored: list[Scored], out_dir) -> list[Path]:
    """Write ``per_image_<protocol>.csv`` and ``summary.csv`` (atomically) into ``out_dir``; one column per metric."""
    out_dir = Path(out_dir)
    paths = []
    axes = ["method", "scale", "crop_size", "use_tv", "seed"]
    for protocol in sorted({s.protocol for s in scored}):
        rows = [{**_axes(s), "image": img["name"], **_numbers(img)}
                for s in scored if s.protocol == protocol for img in s.result.per_image]
        paths.append(_write_csv(out_dir / f"per_image_{protocol}.csv", axes + ["image", *METRICS], rows))
    rows = [{"protocol": s.protocol, **_axes(s), "count": s.result.count, **_numbers(s.result.values)} for s in scored]
    paths.append(_write_csv(out_dir / "summary.csv", ["protocol", *axes, "count", *METRICS], rows))
    return paths


def schedule_text(profile: config.Profile) -> str:
    """One sentence comparing the profile's network and schedule with the paper's."""
    b, p = profile.base, config.PROFILES["paper"].base
    text = (f"Training: G {b.num_block} blocks x {b.num_feat} features (paper: {p.num_block} x {p.num_feat}), "
            f"{b.warmup_iters} MSE warm-up + {b.gan_iters} GAN iterations at batch {b.batch_size} "
            f"(paper profile: {p.warmup_iters} + {p.gan_iters} at batch {p.batch_size}), "
            f"VGG layer {b.vgg_layer}, TV weight {b.tv_weight:g}, bicubic skip `{b.upsample_skip}`.")
    return text


def build_tables(profile: config.Profile, scored: list[Scored], run_dirs: dict[str, Path] | None = None,
                 ) -> list[tables.Table]:
    """Tables 1-2 for each protocol in ``scored``, with a footnote naming profile, data, VGG weights."""
    vgg = {name: read_meta(d).get("vgg_weights_used", "unknown") for name, d in (run_dirs or {}).items()}
    base = profile.base
    out = []
    for protocol in [p for p in PROTOCOLS if any(s.protocol == p for s in scored)]:
        for scale in sorted({s.scale for s in scored if s.protocol == protocol}):
            group = [s for s in scored if s.protocol == protocol and s.scale == scale]
            bicubic = next((s.result for s in group if s.cfg is None), None)
            runs: dict = {}
            for s in group:
                if s.cfg is not None:
                    runs.setdefault((s.cfg.crop_size, s.cfg.use_tv), []).append(s.result)
            count = bicubic.count if bicubic is not None else group[0].result.count
            has_runs = bool(runs)
            note = tables.footnote(profile.name, protocol, base.val_data, count,
                                   train_data=base.train_data if has_runs else None,
                                   vgg_weights_used={k: v for k, v in vgg.items() if f"_x{scale}_" in k} or None,
                                   schedule=schedule_text(profile) if has_runs else None)
            out.append(tables.build_table(scale, protocol, bicubic, runs, note, crop_sizes=profile.crop_sizes))
    return out


def write_tables(profile: config.Profile, built: list[tables.Table], out_dir=None) -> dict[int, tuple[Path, Path]]:
    """Write Tables 1-2 (Markdown + CSV) under ``out_dir`` (default ``<results>/tables``)."""
    folder = Path(out_dir) if out_dir is not None else config.results_dir(profile.name) / "tables"
    return tables.write_tables(built, folder, heading=f"Profile `{profile.name}`: {profile.description}.")


def run_ablation(profile: config.Profile | None = None, seeds: tuple[int, ...] | None = None, runs_root=None,
                 results=None, progress: bool = True) -> AblationResult:
    """Train what is missing, score everything under both protocols, write CSVs and Tables 1-2.

    Args:
        profile: default :func:`srgan_lib.config.get_profile`.
        seeds: grid seeds (default: the profile's).
        runs_root: folder of runs (default ``config.runs_dir(profile.name)``).
        results: results folder (default ``config.results_dir(profile.name)``).
        progress: progress bars and per-method lines.
    """
    profile = profile or config.get_profile()
    results = Path(results) if results is not None else config.results_dir(profile.name)
    run_dirs = run_grid(profile, seeds, runs_root, progress)
    scored = evaluate_grid(profile, run_dirs, out_dir=results / "eval", progress=progress)
    built = build_tables(profile, scored, run_dirs)
    files = {}
    for scale, (md, csv_path) in write_tables(profile, built, results / "tables").items():
        files[md.name], files[csv_path.name] = md, csv_path
    return AblationResult(profile, run_dirs, scored, built, files)
