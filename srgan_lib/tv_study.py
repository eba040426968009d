"""The TV study (notebook 06): what the total-variation term does at weights from 0 to the paper's literal 1.

For one crop per scale (``profile.study_crop``) and every seed, the runs of
:func:`srgan_lib.grid.plan` ``kind="tv_study"`` differ only in the TV weight
(``profile.tv_weights``: 0, the reference code's strength 4e-8, then decades up to
1, the weight eq. (2) prints). Each weight is compared with weight 0 as a paired
difference (:mod:`srgan_lib.stats`); :func:`smallest_distinguishable` names the
smallest weight whose effect is distinguishable from noise.

Why small weights cannot matter: :func:`gradient_ratio` measures, on a training
batch and a trained generator, the size of the TV term's gradient relative to the
pixel term's, with respect to G's output. It grows linearly with the weight; where
it is below a number format's relative precision (float32 ``2**-24``, bf16 ``2**-8``:
:data:`PRECISION`), adding it to the pixel gradient in that format changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import ablation, batches, config, data, datasets, grid
from .checkpoint import load_generator
from .fileio import atomic_write_text
from .losses import tv_loss
from .metrics import METRICS
from .scoring import Scored, score_runs
from .stats import Difference, method_text, paired_difference, seeds_by_images

#: Relative precision (unit roundoff) of the formats training may use: a gradient term smaller than this
#: fraction of the sum it is added to is rounded away.
PRECISION = {"float32": 2.0**-24, "bf16": 2.0**-8}


@dataclass
class WeightResult:
    """One TV weight at one scale: the set's values over seeds and the paired difference from weight 0.

    Attributes:
        scale, weight: the cell.
        values: ``{metric: per-seed set values}`` (:data:`srgan_lib.metrics.METRICS`).
        vs_zero: ``{metric: Difference}`` of this weight minus weight 0 (None for weight 0).
        run_names: the runs, one per seed.
    """

    scale: int
    weight: float
    values: dict[str, list[float]]
    vs_zero: dict[str, Difference] | None
    run_names: list[str]


def study_results(profile: config.Profile, scored: list[Scored], protocol: str = "standard",
                  seeds: tuple[int, ...] | None = None) -> list[WeightResult]:
    """Group the scored TV-study runs by scale and weight, with each weight's difference from weight 0."""
    seeds = profile.seeds if seeds is None else tuple(seeds)
    by_name = {s.method: s.result for s in scored if s.protocol == protocol}
    out = []
    for scale in profile.scales:
        zero = {seed: by_name[grid.run_name(grid.tv_config(profile, scale, seed, 0.0))] for seed in seeds}
        for weight in profile.tv_weights:
            names = [grid.run_name(grid.tv_config(profile, scale, seed, weight)) for seed in seeds]
            res = {seed: by_name[n] for seed, n in zip(seeds, names)}
            values = {m: [float(res[s].values[m]) for s in seeds] for m in METRICS}
            diffs = None if weight == 0 else {m: paired_difference(seeds_by_images(res, m), seeds_by_images(zero, m))
                                              for m in METRICS}
            out.append(WeightResult(scale, weight, values, diffs, names))
    return out


def smallest_distinguishable(results: list[WeightResult], scale: int, metric: str = "psnr") -> float | None:
    """The smallest weight whose ``metric`` differs from weight 0 distinguishably from noise (None: none does)."""
    found = [r.weight for r in results if r.scale == scale and r.vs_zero and r.vs_zero[metric].distinguishable]
    return min(found) if found else None


def gradient_ratio(run_dir, cfg: config.TrainConfig, steps: int = 2) -> float:
    """``|grad TV| / |grad pixel MSE|`` w.r.t. G's output at TV weight 1, on ``steps`` training batches (float64).

    At weight ``w`` the ratio is ``w`` times this (both gradients are linear in their weight).

    Args:
        run_dir: a run whose generator makes the SR images (e.g. the study's weight-0 run).
        cfg: gives the training data, scale, crop, batch size and seed.
        steps: how many training batches to average the ratio over.
    """
    gen, _ = load_generator(run_dir)
    gen = gen.double()
    dataset = data.TrainDataset(datasets.data_folder(cfg.train_data, "train"), cfg.scale, cfg.crop_size,
                                resize_method=cfg.resize_method, progress=False)
    ratios = []
    for k in range(steps):
        lr, hr = (t.double() for t in batches.make_batch(dataset, k, cfg.batch_size, cfg.seed))
        with torch.no_grad():
            sr = gen(lr)
        sr.requires_grad_(True)
        (g_pixel,) = torch.autograd.grad(torch.nn.functional.mse_loss(sr, hr), sr)
        (g_tv,) = torch.autograd.grad(tv_loss(sr), sr)
        ratios.append(float(g_tv.norm() / g_pixel.norm()))
    return float(np.mean(ratios))


def run_study(profile: config.Profile | None = None, seeds: tuple[int, ...] | None = None, root=None,
              results=None, progress: bool = True) -> tuple[list[WeightResult], dict[int, float]]:
    """Train what is missing of the TV study, score it (protocol ``standard``) and measure the gradient ratio.

    Returns:
        ``(weight results, {scale: gradient ratio at weight 1})``; ``<results>/eval/tv_study/`` gets the CSVs.
    """
    profile = profile or config.get_profile()
    results = Path(results) if results is not None else config.results_dir(profile.name)
    root = ablation.runs_root(profile, root)
    wanted = {r.name for r in grid.plan(profile, seeds, ("tv_study",)) if r.kind == "tv_study"}
    run_dirs = {n: d for n, d in ablation.train_runs(profile, seeds, ("tv_study",), root, progress).items()
                if n in wanted}
    scored = score_runs(profile, run_dirs, protocols=("standard",), out_dir=results / "eval" / "tv_study",
                        progress=progress)
    ratios = {}
    for scale in profile.scales:
        cfg = grid.tv_config(profile, scale, (seeds or profile.seeds)[0], 0.0)
        ratios[scale] = gradient_ratio(root / grid.run_name(cfg), cfg)
    return study_results(profile, scored, seeds=seeds), ratios


def to_markdown(profile: config.Profile, results: list[WeightResult], ratios: dict[int, float]) -> str:
    """The study as a Markdown table per scale: values over seeds, difference from weight 0, gradient ratio."""
    lines = [f"# The TV study (profile `{profile.name}`, crop {profile.study_crop}, protocol `standard`)", ""]
    for scale in profile.scales:
        rows = [r for r in results if r.scale == scale]
        header = ["TV weight", "seeds", "TV/pixel gradient"]
        for m, metric in METRICS.items():
            header += [f"{metric.label}", f"{metric.label} − weight 0 [95 % CI]", "distinguishable?"]
        lines += [f"## x{scale}", "", "| " + " | ".join(header) + " |", "| " + " | ".join(["---:"] * len(header)) + " |"]
        for r in rows:
            ratio = r.weight * ratios.get(scale, float("nan"))
            cells = [f"{r.weight:g}", str(len(r.run_names)), f"{ratio:.1e}"]
            for m, metric in METRICS.items():
                v = np.array(r.values[m])
                cells.append(f"{v.mean():.{metric.digits}f} ± {v.std(ddof=1) if v.size > 1 else 0:.{metric.digits}f}")
                d = r.vs_zero[m] if r.vs_zero else None
                cells += [d.format(metric.digits + 1) if d else "", ("**yes**" if d.distinguishable else "no") if d else ""]
            lines.append("| " + " | ".join(cells) + " |")
        smallest = smallest_distinguishable(results, scale)
        lines += ["", f"x{scale}: smallest TV weight whose PSNR differs from weight 0 distinguishably from noise: "
                  + (f"**{smallest:g}**." if smallest is not None else "**none** of those tried."), ""]
    lines += [method_text(), "", "TV/pixel gradient: |grad TV| / |grad MSE| with respect to G's output, times the "
              f"weight; below {PRECISION['float32']:.0e} (float32) or {PRECISION['bf16']:.0e} (bf16) adding it to the "
              "pixel gradient in that format changes nothing."]
    return "\n".join(lines) + "\n"


def write_study(profile: config.Profile, results: list[WeightResult], ratios: dict[int, float], out_dir=None) -> Path:
    """Write ``tv_study.md`` (atomically) into ``out_dir`` (default ``<results>/tables``)."""
    folder = Path(out_dir) if out_dir is not None else config.results_dir(profile.name) / "tables"
    return atomic_write_text(folder / "tv_study.md", to_markdown(profile, results, ratios))


def plot_study(results: list[WeightResult], ratios: dict[int, float], metrics=("psnr", "ssim")):
    """PSNR/SSIM against the TV weight (mean ± std over seeds), and the gradient ratio with the precisions.

    Weight 0 is drawn at the left end of the log axis, labelled 0. Returns the figure.
    """
    import matplotlib.pyplot as plt  # deferred: plotting is only for notebooks and figures

    scales = sorted({r.scale for r in results})
    fig, axes = plt.subplots(1, len(metrics) + 1, figsize=(4.2 * (len(metrics) + 1), 3.4))
    positive = sorted({r.weight for r in results if r.weight > 0})
    zero_at = positive[0] / 10 if positive else 1e-9
    for ax, m in zip(axes, metrics):
        for scale in scales:
            rows = [r for r in results if r.scale == scale]
            x = [r.weight if r.weight > 0 else zero_at for r in rows]
            mean = [np.mean(r.values[m]) for r in rows]
            std = [np.std(r.values[m], ddof=1) if len(r.values[m]) > 1 else 0 for r in rows]
            ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=f"x{scale}")
        ax.set_xscale("log")
        ax.set_xticks([zero_at, *positive], ["0", *(f"{w:g}" for w in positive)], rotation=45)
        ax.set_xlabel("TV weight")
        ax.set_ylabel(METRICS[m].label + (f" ({METRICS[m].unit})" if METRICS[m].unit else ""))
        ax.legend()
    ax = axes[-1]
    w = np.array(positive)
    for scale in scales:
        ax.loglog(w, w * ratios[scale], marker="o", label=f"x{scale}")
    for name, eps in PRECISION.items():
        ax.axhline(eps, ls="--", color="gray")
        ax.text(w[0], eps * 1.5, f"{name} precision", fontsize=8, color="gray")
    ax.set_xlabel("TV weight")
    ax.set_ylabel("|grad TV| / |grad MSE|")
    ax.legend()
    fig.tight_layout()
    return fig
