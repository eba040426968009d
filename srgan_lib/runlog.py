"""What a training run writes besides checkpoints: ``metrics.csv``, ``val.csv``, TensorBoard.

``metrics.csv`` has one row per logged window (every ``log_every`` steps, and at
the end of the MSE warm-up) with the MEAN of each term over the window:

``step, phase, g_pixel, g_content, g_adv, g_tv, g_total, d_real, d_fake, d_total,
d_x, d_g_z, lr, time``

``d_x`` and ``d_g_z`` are the means of D(x) = sigmoid(D's logit) on HR crops and
of D(G(z)) on SR images (the paper's notation, eq. (8)); ``time`` is the run's
wall-clock seconds (summed over resumes). Terms that a phase does not compute
(everything but ``g_pixel``/``g_total`` in the MSE warm-up) are left empty.
``val.csv`` holds the step and one column per metric of
:data:`srgan_lib.metrics.METRICS` (``step, psnr, ssim``) of each validation. On resume both files
are cut back to the checkpoint's step, so that they read as if the run had
never stopped.
"""

from __future__ import annotations

import csv
import io
import json
import platform
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter

from . import config, losses
from .checkpoint import GENERATOR, load_checkpoint
from .config import TrainConfig
from .errors import ConfigError
from .fileio import atomic_write_text
from .metrics import METRICS

#: D(x) and D(G(z)) (``Trainer.d_step``), logged with the losses.
D_OUTPUTS = ("d_x", "d_g_z")
#: The loss columns of ``metrics.csv``: G's terms and total, D's loss, D's outputs.
LOSS_KEYS = (*losses.G_KEYS, *losses.D_KEYS, *D_OUTPUTS)
METRICS_COLUMNS = ("step", "phase", *LOSS_KEYS, "lr", "time")
#: The columns of ``val.csv``: the step, then one per metric of the registry (``psnr, ssim``).
VAL_COLUMNS = ("step", *METRICS)


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.8g}"
    return str(value)


class _CsvLog:
    """A CSV file appended to row by row (flushed, so a kill loses at most a row)."""

    def __init__(self, path: Path, columns: tuple[str, ...], keep_until: int | None):
        self.path, self.columns = Path(path), columns
        if keep_until is None or not self.path.is_file():
            atomic_write_text(self.path, ",".join(columns) + "\n")
        else:  # resume: drop rows logged after the checkpoint
            with open(self.path, newline="", encoding="utf-8") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= keep_until]
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            atomic_write_text(self.path, buf.getvalue())
        self._file = open(self.path, "a", newline="", encoding="utf-8")

    def write(self, row: dict) -> None:
        self._file.write(",".join(_fmt(row.get(c)) for c in self.columns) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class RunLog:
    """CSV files and TensorBoard for one run folder.

    Args:
        run_dir: the run folder.
        resume_step: None for a fresh run (files started anew), else the
            checkpoint's step (rows after it dropped; TensorBoard purges them too).
        tensorboard: write TensorBoard event files into ``run_dir/tb``.
    """

    def __init__(self, run_dir: Path, resume_step: int | None = None, tensorboard: bool = True):
        run_dir = Path(run_dir)
        self.metrics = _CsvLog(run_dir / "metrics.csv", METRICS_COLUMNS, resume_step)
        self.val = _CsvLog(run_dir / "val.csv", VAL_COLUMNS, resume_step)
        # TensorBoard hides what the stopped run logged at purge_step and later: the checkpoint's step stays
        purge_step = resume_step + 1 if resume_step is not None else None
        self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=purge_step) if tensorboard else None

    def log_losses(self, step: int, phase: str, values: dict, lr: float, time_s: float) -> None:
        """One metrics row; ``values`` maps a subset of :data:`LOSS_KEYS` to floats."""
        self.metrics.write({"step": step, "phase": phase, **values, "lr": lr, "time": round(time_s, 3)})
        if self.writer is not None:
            for key, value in values.items():
                group = "D" if key in D_OUTPUTS else "loss"
                self.writer.add_scalar(f"{group}/{key}", value, step)
            self.writer.add_scalar("lr", lr, step)

    def log_val(self, step: int, values: dict[str, float]) -> None:
        """One ``val.csv`` row; ``values`` maps each metric of ``METRICS`` to the validation set's value."""
        self.val.write({"step": step, **values})
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(f"val/{name}", value, step)

    def close(self) -> None:
        self.metrics.close()
        self.val.close()
        if self.writer is not None:
            self.writer.close()


CONFIG = "config.json"  #: a run's settings, written first (srgan_lib.train)


def read_config(run_dir) -> TrainConfig:
    """The settings of the run in ``run_dir`` (its ``config.json``): read them, never parse the run's name."""
    path = Path(run_dir) / CONFIG
    try:
        return TrainConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the run's settings ({exc}); is {run_dir} a run folder?") from None


def read_metrics(run_dir) -> list[dict]:
    """Rows of ``run_dir/metrics.csv`` with numbers as floats (empty cells -> NaN)."""
    return _read(Path(run_dir) / "metrics.csv")


def read_val(run_dir) -> list[dict]:
    """Rows of ``run_dir/val.csv`` (step and one value per metric: psnr, ssim, ...) as floats."""
    return _read(Path(run_dir) / "val.csv")


def _read(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        row = {}
        for k, v in r.items():
            if k == "phase":
                row[k] = v
            elif k == "step":
                row[k] = int(v)
            else:
                row[k] = float(v) if v != "" else float("nan")
        out.append(row)
    return out


#: Config fields that may differ when a run is resumed (they do not change the numbers), and removed ones.
RESUMABLE_KEYS = frozenset({"device"}) | config.REMOVED_KEYS
#: Fields the MSE warm-up never reads: a run may continue another run's finished warm-up (``start_from``)
#: when their configs differ only in these (and its own warm-up is at least as long).
WARMUP_FREE_KEYS = RESUMABLE_KEYS | {"use_tv", "tv_weight", "adv_weight", "content_weight", "vgg_layer",
                                     "vgg_weights", "gan_iters", "warmup_iters"}


def check_run_dir(run_dir: Path, cfg: config.TrainConfig) -> bool:
    """True when ``run_dir`` holds this config's run; raise when it holds another.

    Raises:
        ConfigError: ``config.json`` differs from ``cfg`` (naming the fields).
    """
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        return False
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc}); delete {run_dir} to start the run again") from None
    require_same_config(stored, cfg, run_dir)
    return True


def require_same_config(stored: dict, cfg: config.TrainConfig, run_dir: Path,
                         free=RESUMABLE_KEYS) -> None:
    """Raise a :class:`ConfigError` naming the fields outside ``free`` where ``stored`` differs from ``cfg``."""
    stored = config.TrainConfig.from_dict(stored).to_dict()  # renamed fields of older versions' configs
    wanted = cfg.to_dict()
    diff = sorted(k for k in set(stored) | set(wanted) if k not in free and stored.get(k) != wanted.get(k))
    if diff:
        shown = ", ".join(f"{k}: {stored.get(k)!r} there, {wanted.get(k)!r} requested" for k in diff[:4])
        raise ConfigError(f"{run_dir} holds a run with another config ({shown}); "
                          "pass another --runs folder or delete that one")


def warmup_checkpoint(start_from: Path, cfg: config.TrainConfig) -> dict:
    """The finished MSE warm-up in ``start_from`` that ``cfg`` may continue (see :data:`WARMUP_FREE_KEYS`).

    Raises:
        ConfigError: no finished warm-up there, or one of another config.
    """
    ckpt = load_checkpoint(start_from) if (Path(start_from) / GENERATOR).is_file() else None
    if ckpt is None or ckpt["step"] != ckpt["config"]["warmup_iters"] or ckpt["config"]["gan_iters"] != 0:
        raise ConfigError(f"{start_from}: no finished MSE warm-up to continue; train it first")
    require_same_config(ckpt["config"], cfg, start_from, WARMUP_FREE_KEYS)
    if cfg.warmup_iters < ckpt["step"]:
        raise ConfigError(f"{start_from}: its warm-up ({ckpt['step']} iterations) is longer than this run's "
                          f"({cfg.warmup_iters})")
    return ckpt


def write_meta(run_dir, trainer, folders, device, wall, step, finished) -> None:
    """``meta.json``: what a run actually used (VGG weights, precision, data, device) and how far it got."""
    meta = {"vgg_weights_used": trainer.loss.vgg_weights_used, "precision": trainer.precision,
            "train_data": str(folders[0]),
            "val_data": str(folders[1]) if folders[1] else None, "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
            or platform.machine(), "torch_version": torch.__version__, "wall_time_s": round(wall, 3),
            "step": step, "finished": finished}
    atomic_write_text(Path(run_dir) / "meta.json", json.dumps(meta, indent=2) + "\n")
