"""Scoring trained runs and bicubic on a profile's validation set, with each run's scores kept in its folder.

:func:`score_runs` scores bicubic and every run under both protocols (``standard``
and ``paper``, :mod:`srgan_lib.protocols`), per image, with every metric of
:data:`srgan_lib.metrics.METRICS`. A run's scores are kept in its folder
(``scores.json``, keyed by the validation set, protocol and metrics, valid while
its ``generator.pt`` is unchanged), so that scoring again costs nothing. It writes
``<results>/eval/``:

* ``per_image_<protocol>.csv`` -- ``method, scale, crop_size, use_tv, tv_weight, seed, image, <metrics>``;
* ``summary.csv`` -- the set's values per method and protocol (under the ``paper``
  protocol the set's PSNR is that of the mean MSE, so it is stored, not recomputed).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from . import config, datasets, distributed, runlog
from .checkpoint import GENERATOR, load_generator
from .evaluate import EvalResult, evaluate_methods
from .fileio import atomic_write_text
from .metrics import METRICS
from .protocols import PROTOCOLS
from .upscale import upscale

logger = logging.getLogger(__name__)
SCORES = "scores.json"  #: a run's cached scores
BICUBIC_SCORES = "bicubic_scores.json"  #: bicubic's cached scores, in the eval folder


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
    result: EvalResult
    cfg: config.TrainConfig | None = None


def validation_set(profile: config.Profile) -> tuple[Path, int | None, int | None]:
    """``(folder, limit, max_side)`` of the profile's validation set."""
    base = profile.base
    return datasets.data_folder(base.val_data, "val"), base.val_limit, base.val_max_side


def read_meta(run_dir) -> dict:
    """A run's ``meta.json`` (``vgg_weights_used``, wall time, device ...), ``{}`` when absent."""
    try:
        return json.loads((Path(run_dir) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _cache_keys(folder: Path, limit, max_side, protocols) -> dict[str, str]:
    """The key of a protocol's scores in the caches: validation set, protocol and metrics."""
    return {p: f"{folder.name}|{p}|limit={limit}|max_side={max_side}|{','.join(METRICS)}" for p in protocols}


def _signature(run_dir: Path) -> list[int]:
    st = (run_dir / GENERATOR).stat()
    return [st.st_size, st.st_mtime_ns]


def _cached(run_dir: Path, key: str) -> EvalResult | None:
    try:
        stored = json.loads((run_dir / SCORES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if stored.get("generator") != _signature(run_dir) or key not in stored.get("scores", {}):
        return None
    return _from_dict(stored["scores"][key])


def _from_dict(d: dict) -> EvalResult:
    inf = float("inf")  # to_dict wrote a non-finite value (the PSNR of an exact match) as null
    per_image = [{k: (inf if v is None else v) for k, v in row.items()} for row in d["per_image"]]
    return EvalResult({m: inf if d[m] is None else d[m] for m in METRICS}, d["protocol"], d["scale"], d["count"],
                      per_image, d["resize_method"])


class _BicubicCache:
    """Bicubic's scores on a validation folder, kept beside the eval CSVs; valid while the folder's files
    (names, sizes, times) are unchanged."""

    def __init__(self, path: Path, folder: Path):
        self.path = path
        self.signature = sorted([p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in folder.iterdir()
                                if p.is_file())
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = {}
        self.scores = stored.get("scores", {}) if stored.get("folder") == self.signature else {}

    def get(self, key: str, scale: int) -> EvalResult | None:
        d = self.scores.get(f"{key}|x{scale}")
        return _from_dict(d) if d is not None else None

    def put(self, key: str, scale: int, result: EvalResult) -> None:
        self.scores[f"{key}|x{scale}"] = result.to_dict()
        atomic_write_text(self.path, json.dumps({"folder": self.signature, "scores": self.scores}) + "\n")


def _store(run_dir: Path, key: str, result: EvalResult) -> None:
    try:
        stored = json.loads((run_dir / SCORES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = {}
    if stored.get("generator") != _signature(run_dir):
        stored = {"generator": _signature(run_dir), "scores": {}}
    stored["scores"][key] = result.to_dict()
    atomic_write_text(run_dir / SCORES, json.dumps(stored) + "\n")


def _score_one(name: str, run_dir: str | None, folder: str, scale: int, protocols: tuple[str, ...],
               limit: int | None, max_side: int | None, device: str) -> dict:
    """``{(name, protocol): EvalResult}`` of one run (or bicubic: ``run_dir`` None), in one thread: a worker's job."""
    dev = distributed.resolve_device(device)
    with distributed.one_thread(dev):
        fn = None
        if run_dir is not None:
            gen, _ = load_generator(Path(run_dir), device=dev)
            fn = lambda lr: upscale(gen, lr, tile=config.TILE)  # noqa: E731
        return evaluate_methods(Path(folder), scale, {name: fn}, protocols, limit=limit, max_side=max_side,
                                device=dev)


def _score_in_workers(jobs: list[tuple], n: int, progress: bool) -> dict:
    """Every job of :func:`_score_one` in ``n`` worker processes; their results merged."""
    out: dict = {}
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool, \
            tqdm(total=len(jobs), desc="scoring", unit="run", disable=not progress, dynamic_ncols=True) as bar:
        for future in as_completed([pool.submit(_score_one, *job) for job in jobs]):
            out.update(future.result())
            bar.update(1)
    return out


def score_runs(profile: config.Profile, run_dirs: dict[str, Path], protocols=PROTOCOLS, out_dir=None,
               device: str = "auto", progress: bool = True, workers: int | None = None) -> list[Scored]:
    """Score bicubic and every run under each protocol (cached per run); write the CSVs under ``out_dir``.

    Args:
        profile: gives the validation set.
        run_dirs: ``{run name: finished run folder}`` (from :func:`train_runs`).
        protocols: protocols to score with.
        out_dir: where the CSVs go (default ``<results>/eval``).
        device: where generators run (``"auto"``: CUDA when available).
        progress: a tqdm bar over the images of each scale (over the runs with several workers).
        workers: processes scoring at once, one run each, in one thread (default
            :func:`srgan_lib.distributed.cpu_workers` of ``profile.workers``); 1 scores in this process, one pass
            over the images per scale.

    Returns:
        list[Scored]: bicubic per scale, then every run, for each protocol.
    """
    dev = distributed.resolve_device(device)
    cfgs = {name: runlog.read_config(d) for name, d in run_dirs.items()}
    folder, limit, max_side = validation_set(profile)
    keys = _cache_keys(folder, limit, max_side, protocols)
    results: dict[tuple[str, str], EvalResult] = {}
    for name, d in run_dirs.items():
        for protocol in protocols:
            hit = _cached(d, keys[protocol])
            if hit is not None:
                results[(name, protocol)] = hit
    out_dir = Path(out_dir) if out_dir is not None else config.results_dir(profile.name) / "eval"
    bicubic_cache = _BicubicCache(out_dir / BICUBIC_SCORES, folder)
    scales = sorted({c.scale for c in cfgs.values()} | set(profile.scales))
    n = workers or distributed.cpu_workers(profile.workers, device)
    todo = [n_ for n_ in run_dirs if any((n_, p) not in results for p in protocols)]
    if n > 1 and len(todo) > 1:  # one job per run (and per uncached bicubic scale), several at a time
        jobs = [(name, str(run_dirs[name]), str(folder), cfgs[name].scale, tuple(protocols), limit, max_side, device)
                for name in todo]
        jobs += [("bicubic", None, str(folder), s, tuple(protocols), limit, max_side, device) for s in scales
                 if not all(bicubic_cache.get(keys[p], s) for p in protocols)]
        if progress:
            logger.info(f"scoring {len(todo)} runs on {folder.name}, {n} at a time ({len(protocols)} protocols)")
        for (name, protocol), res in _score_in_workers(jobs, n, progress).items():
            if name == "bicubic":
                bicubic_cache.put(keys[protocol], res.scale, res)
            else:
                results[(name, protocol)] = res
                _store(run_dirs[name], keys[protocol], res)
    for scale in scales:
        todo = [n for n, c in cfgs.items() if c.scale == scale and any((n, p) not in results for p in protocols)]
        cached = {p: bicubic_cache.get(keys[p], scale) for p in protocols}
        if not todo and all(cached.values()):  # nothing to score at this scale
            results.update({(f"bicubic_x{scale}", p): res for p, res in cached.items()})
            continue
        methods = {"bicubic": None}
        for name in todo:  # one generator in memory at a time would cost a decode per run; these are small
            gen, _ = load_generator(run_dirs[name], device=dev)
            methods[name] = lambda lr, g=gen: upscale(g, lr, tile=config.TILE)
        if progress and todo:
            logger.info(f"x{scale}: scoring {len(todo)} runs on {folder.name} ({len(protocols)} protocols)")
        with distributed.one_thread(dev):  # as in a worker: the same numbers however many score at once
            scored_here = evaluate_methods(folder, scale, methods, protocols, limit=limit, max_side=max_side,
                                           device=dev, progress=progress and bool(todo))
        for (name, protocol), res in scored_here.items():
            results[(f"bicubic_x{scale}" if name == "bicubic" else name, protocol)] = res
            if name != "bicubic":
                _store(run_dirs[name], keys[protocol], res)
            else:
                bicubic_cache.put(keys[protocol], scale, res)
    scored = []
    for protocol in protocols:
        scored += [Scored(protocol, "bicubic", s, results[(f"bicubic_x{s}", protocol)]) for s in scales]
        scored += [Scored(protocol, name, cfg.scale, results[(name, protocol)], cfg) for name, cfg in cfgs.items()]
    write_eval_csv(scored, out_dir)
    return scored


def _axes(s: Scored) -> dict:
    cfg = s.cfg
    return {"method": s.method, "scale": s.scale, "crop_size": cfg.crop_size if cfg else "",
            "use_tv": int(cfg.use_tv) if cfg else "", "tv_weight": f"{cfg.effective_tv_weight:g}" if cfg else "",
            "seed": cfg.seed if cfg else ""}


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
    axes = ["method", "scale", "crop_size", "use_tv", "tv_weight", "seed"]
    for protocol in sorted({s.protocol for s in scored}):
        rows = [{**_axes(s), "image": img["name"], **_numbers(img)}
                for s in scored if s.protocol == protocol for img in s.result.per_image]
        paths.append(_write_csv(out_dir / f"per_image_{protocol}.csv", axes + ["image", *METRICS], rows))
    rows = [{"protocol": s.protocol, **_axes(s), "count": s.result.count, **_numbers(s.result.values)} for s in scored]
    paths.append(_write_csv(out_dir / "summary.csv", ["protocol", *axes, "count", *METRICS], rows))
    return paths
