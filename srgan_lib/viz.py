"""Figures and the notebook widget for the results (``notebooks/05_ablation_evaluation.ipynb``).

Every figure function returns a :class:`matplotlib.figure.Figure` (the caller
shows or saves it, :func:`save_figure` writes PNGs atomically). Images are
``H x W x 3`` uint8 RGB arrays here, as :func:`srgan_lib.images.load_image`
returns them.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import runlog
from .checkpoint import load_generator
from .config import TILE
from .fileio import atomic_write
from .images import rgb_to_y, to_tensor, to_uint8
from .metrics import METRICS, psnr
from .protocols import make_pair
from .resize import imresize
from .upscale import upscale


def save_figure(fig, path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG atomically (temporary file, then rename)."""
    return atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight"))


def _plt():
    import matplotlib  # deferred: the backend is chosen first (headless unless a notebook set one)

    if not matplotlib.get_backend().lower().startswith(("module://", "nbagg", "widget", "ipympl", "qt", "tk",
                                                         "gtk", "macosx", "wx")):
        matplotlib.use("Agg")  # headless: the figure is saved or shown inline by the caller
    import matplotlib.pyplot as plt

    return plt


def prepare_triplet(hr, generator=None, scale: int = 4, resize_method: str = "matlab") -> dict:
    """HR (mod-cropped), its LR, bicubic and (with a generator) SR versions, as uint8 images.

    Args:
        hr: ``H x W x 3`` uint8 RGB.
        generator: a trained :class:`srgan_lib.models.Generator` (None: no ``"sr"``).
        scale: the generator's factor.
        resize_method: how LR and bicubic are made (``"matlab"``: the standard protocol).

    Returns:
        dict: ``hr``, ``lr``, ``bicubic`` (and ``sr``), each ``H x W x 3`` uint8.
    """
    hr, lr = make_pair(np.asarray(hr), scale, "standard", resize_method)
    out = {"hr": hr, "lr": lr, "bicubic": imresize(lr, size=hr.shape[:2], method=resize_method)}
    if generator is not None:
        out["sr"] = to_uint8(upscale(generator, to_tensor(lr), tile=TILE))[0]
    return out


def texture_box(img, size: int) -> tuple[int, int, int]:
    """``(top, left, side)`` of the ``size`` x ``size`` window with the most gradient energy.

    The zoomed inset should show texture, where SR methods differ, not flat sky.

    Args:
        img: ``H x W x 3`` or ``H x W`` array (any numeric range).
        size: the window's side, cut to the image's shorter side.
    """
    y = np.asarray(img, dtype=np.float64)
    y = y.mean(axis=2) if y.ndim == 3 else y
    size = int(min(size, *y.shape))
    energy = np.zeros_like(y)
    energy[:, 1:] += np.diff(y, axis=1) ** 2
    energy[1:, :] += np.diff(y, axis=0) ** 2
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = (integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size])
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(top), int(left), size


def comparison_figure(panels: dict, box: tuple[int, int, int] | None = None, title: str | None = None,
                      zoom_fraction: float = 0.25):
    """Images side by side (top) with the same zoomed window of each (bottom).

    The paper's figure: ``{"Bicubic x4": ..., "SRGAN x4": ..., "HR": ...}``.

    Args:
        panels: ``{label: H x W x 3 uint8}``, all of one size.
        box: ``(top, left, side)`` of the zoomed window; default :func:`texture_box`
            of the last panel (the HR image) with side ``zoom_fraction`` of the short side.
        title: the figure's title.
    """
    plt = _plt()
    from matplotlib.patches import Rectangle

    images = list(panels.values())
    h, w = images[0].shape[:2]
    if any(im.shape[:2] != (h, w) for im in images):
        raise ValueError(f"comparison_figure: all panels must have one size, got {[im.shape for im in images]}")
    if box is None:
        box = texture_box(images[-1], max(16, int(min(h, w) * zoom_fraction)))
    top, left, side = box
    n = len(panels)
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 3.2 * (h / w) + 3.4), squeeze=False,
                             gridspec_kw={"height_ratios": [h / w, 1]})
    for i, (label, img) in enumerate(panels.items()):
        axes[0, i].imshow(img)
        axes[0, i].add_patch(Rectangle((left - 0.5, top - 0.5), side, side, fill=False, edgecolor="red", lw=1.5))
        axes[0, i].set_title(label, fontsize=9)
        axes[1, i].imshow(img[top:top + side, left:left + side], interpolation="nearest")
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def metrics_vs_crop(built_tables: list, protocol: str = "standard", metrics=("psnr", "ssim")):
    """Gain over bicubic against crop size, per scale and metric: ours (mean ± std over seeds) beside the paper's.

    Gains, not absolute values: our data and networks differ from the paper's, a gain over
    the same images' bicubic compares (``srgan_lib.tables``).

    Args:
        built_tables: :class:`srgan_lib.tables.Table` objects (from the ablation).
        protocol: which protocol's tables to plot.
        metrics: which metrics (rows of the figure).
    """
    plt = _plt()
    chosen = sorted((t for t in built_tables if t.protocol == protocol), key=lambda t: t.scale)
    if not chosen:
        raise ValueError(f"metrics_vs_crop: no table for protocol {protocol!r}")
    fig, axes = plt.subplots(len(metrics), len(chosen), figsize=(4.6 * len(chosen), 3 * len(metrics)), squeeze=False)
    for j, table in enumerate(chosen):
        for i, metric in enumerate(metrics):
            ax, spec = axes[i, j], METRICS[metric]
            for use_tv, colour in ((True, "tab:blue"), (False, "tab:orange")):
                rows = [r for r in table.rows if r["kind"] == "srgan" and r["use_tv"] == use_tv]
                ours = [(r["crop_size"], r[f"gain_{metric}"]) for r in rows if r[f"gain_{metric}"] is not None]
                if ours:
                    ax.errorbar([c for c, _ in ours], [g.mean for _, g in ours], yerr=[g.std for _, g in ours],
                                marker="o", capsize=3, color=colour, label=f"ours, TV {'on' if use_tv else 'off'}")
                paper = [(r["crop_size"], r[f"paper_gain_{metric}"]) for r in rows
                         if r[f"paper_gain_{metric}"] is not None]
                if paper:
                    ax.plot(*zip(*paper), marker="s", mfc="none", ls=":", color=colour,
                            label=f"paper, TV {'on' if use_tv else 'off'}")
            ax.axhline(0, color="gray", ls="--", lw=0.8)
            ax.set_xticks(sorted({r["crop_size"] for r in table.rows if r["crop_size"]}))
            ax.set_xlabel("crop size (HR pixels)")
            ax.set_ylabel(f"{spec.label} − bicubic" + (f" ({spec.unit})" if spec.unit else ""))
            ax.set_title(f"x{table.scale}, {spec.label} gain ({protocol})", fontsize=10)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def differences_plot(table, metric: str = "psnr"):
    """The paired differences of a :class:`srgan_lib.tables.Table` with their 95 % intervals, paper's beside.

    Filled markers: distinguishable from noise (the interval excludes 0); hollow: not.
    """
    plt = _plt()
    rows = table.differences
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(rows) + 1.2))
    for k, d in enumerate(rows):
        diff = d[f"diff_{metric}"]
        ax.errorbar(diff.mean, k, xerr=[[diff.mean - diff.low], [diff.high - diff.mean]], fmt="o", capsize=3,
                    color="tab:blue", mfc="tab:blue" if diff.distinguishable else "white",
                    label="ours (95 % CI)" if k == 0 else None)
        if d.get(f"paper_{metric}") is not None:
            ax.plot(d[f"paper_{metric}"], k, "s", color="tab:red", mfc="none",
                    label="paper" if not any(r.get(f"paper_{metric}") is not None for r in rows[:k]) else None)
    ax.axvline(0, color="gray", lw=0.8)
    ax.set_yticks(range(len(rows)), [d["label"] for d in rows], fontsize=8)
    ax.invert_yaxis()
    spec = METRICS[metric]
    ax.set_xlabel(f"{spec.label} difference" + (f" ({spec.unit})" if spec.unit else ""))
    ax.set_title(f"x{table.scale}, protocol {table.protocol}: filled = distinguishable from noise", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _columns(rows: list[dict]) -> dict[str, np.ndarray]:
    """Rows of :func:`srgan_lib.runlog.read_metrics` / ``read_val`` as column arrays."""
    return {key: np.array([r[key] for r in rows]) for key in (rows[0] if rows else {})}


def training_curves(run_dirs: dict):
    """Training curves of runs: pixel MSE, validation PSNR, D(x) and D(G(z)); one row per scale.

    Args:
        run_dirs: ``{run name: run folder}`` with ``config.json`` and ``metrics.csv`` (and ``val.csv``)
            as :func:`srgan_lib.train.train` writes them; each run's scale (its row) and TV setting (solid
            with TV, dashed without) are read from its ``config.json``.
    """
    plt = _plt()
    runs = {name: Path(d) for name, d in run_dirs.items() if (Path(d) / "metrics.csv").is_file()}
    if not runs:
        raise ValueError("training_curves: none of the runs has a metrics.csv yet")
    cfgs = {name: runlog.read_config(run_dir) for name, run_dir in runs.items()}
    scales = sorted({cfg.scale for cfg in cfgs.values()})
    fig, axes = plt.subplots(len(scales), 3, figsize=(13, 3.4 * len(scales)), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (name, run_dir) in enumerate(sorted(runs.items())):
        row = scales.index(cfgs[name].scale)
        style = {"color": colours[(k // 2) % len(colours)], "ls": "-" if cfgs[name].use_tv else "--",
                 "lw": 1.2, "label": name}
        m = _columns(runlog.read_metrics(run_dir))
        axes[row, 0].plot(m["step"], m["g_pixel"], **style)
        if (run_dir / "val.csv").is_file():
            v = _columns(runlog.read_val(run_dir))
            if len(v.get("step", [])):
                axes[row, 1].plot(v["step"], v["psnr"], marker=".", **style)
        if "d_x" in m and np.isfinite(m["d_x"]).any():
            axes[row, 2].plot(m["step"], m["d_x"], **style)
            axes[row, 2].plot(m["step"], m["d_g_z"], **{**style, "lw": 0.6, "label": None})
        warm = m["step"][m["phase"] == "mse"] if "phase" in m else []
        for ax in axes[row]:
            if len(warm):
                ax.axvline(float(np.max(warm)), color="gray", lw=0.8, ls=":")
    for row, scale in enumerate(scales):
        axes[row, 0].set_yscale("log")
        for ax, label in zip(axes[row], ("g_pixel (MSE)", "validation PSNR (dB, standard)", "D(x) thick, D(G(z)) thin")):
            ax.set_title(f"x{scale}: {label}", fontsize=9)
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3)
    axes[0, 1].legend(fontsize=6, ncol=1)
    fig.tight_layout()
    return fig


def _png(img) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG")
    return buf.getvalue()


def comparison_widget(hr_images: dict, run_dirs: dict, resize_method: str = "matlab", device: str = "cpu"):
    """An ipywidgets viewer: choose an image and a run, toggle bicubic / SR / HR.

    Outputs are computed on first view and cached. The caption gives the shown
    image's PSNR against HR on the Y channel with ``scale`` pixels of border
    removed (the standard protocol's per-image value).

    Args:
        hr_images: ``{name: H x W x 3 uint8}`` HR images.
        run_dirs: ``{run name: run folder}`` (each with ``generator.pt``).
        resize_method: how LR and bicubic are made.
        device: where the generators run.

    Returns:
        ipywidgets.VBox: the viewer; ``.children`` are the controls, the caption and the image.
    """
    import ipywidgets as widgets  # deferred: only the notebook viewer needs the widget machinery

    images, runs = dict(hr_images), dict(run_dirs)
    if not images or not runs:
        raise ValueError("comparison_widget needs at least one image and one run")
    pick_image = widgets.Dropdown(options=list(images), description="image")
    pick_run = widgets.Dropdown(options=list(runs), description="run")
    view = widgets.ToggleButtons(options=["bicubic", "SR", "HR"], value="SR", description="show")
    caption = widgets.HTML()
    picture = widgets.Image(format="png")
    generators: dict = {}
    triplets: dict = {}

    def update(_change=None):
        name, run = pick_image.value, pick_run.value
        if run not in generators:
            generators[run] = load_generator(runs[run], device=device)
        gen, cfg = generators[run]
        if (name, run) not in triplets:
            triplets[name, run] = prepare_triplet(images[name], gen, cfg.scale, resize_method)
        trip = triplets[name, run]
        img = trip[{"bicubic": "bicubic", "SR": "sr", "HR": "hr"}[view.value]]
        y = [torch.from_numpy(rgb_to_y(a).astype(np.float64))[None, None] for a in (img, trip["hr"])]
        value = float(psnr(y[0], y[1], data_range=255.0, crop_border=cfg.scale)[0])
        caption.value = (f"<b>{view.value}</b> of <code>{name}</code>, run <code>{run}</code> (x{cfg.scale}): "
                         f"PSNR {value:.2f} dB (Y, border {cfg.scale})")
        picture.value = _png(img)

    for control in (pick_image, pick_run, view):
        control.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([pick_image, pick_run]), view, caption, picture])
