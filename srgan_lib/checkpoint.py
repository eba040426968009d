"""Checkpoints of a training run, and loading a trained generator.

A run folder (see :func:`srgan_lib.train.train`) holds:

* ``last.pt`` and ``prev.pt`` -- training checkpoints: the state dicts of G, D and
  both optimisers, the RNG states, the step, the phase and the config. A new
  checkpoint is written to a temporary file first; only then is ``last.pt``
  moved to ``prev.pt`` and the new file renamed to ``last.pt``, so a kill at any
  instant leaves at least one complete checkpoint.
* ``generator.pt`` -- the final generator (state dict + config), written last;
  its presence marks the run as finished.

Everything stored is plain data (tensors, numbers, strings, lists, dicts), so
files load with ``torch.load(weights_only=True)``: a checkpoint cannot run code.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from . import models
from .config import TrainConfig
from .errors import CheckpointError, UserError
from .fileio import atomic_write, temp_path

LAST, PREV, GENERATOR = "last.pt", "prev.pt", "generator.pt"
#: Stored in every file so that a foreign ``.pt`` file is recognised as such.
FORMAT_TRAIN, FORMAT_GENERATOR = "srgan-train-checkpoint-v1", "srgan-generator-v1"


def rng_state() -> dict:
    """The state of every random generator training touches (as plain data)."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned (CUDA states only if CUDA is in use)."""
    random.setstate(_as_tuple(state["python"]))
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np_state[1].numpy(), np_state[2], np_state[3], np_state[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def save_checkpoint(run_dir: Path, state: dict) -> Path:
    """Write ``state`` as ``run_dir/last.pt``, keeping the previous one as ``prev.pt``."""
    run_dir = Path(run_dir)
    state = {"format": FORMAT_TRAIN, **state}
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(run_dir, ".last.pt.", ".tmp")
    try:
        torch.save(state, tmp)
        last = run_dir / LAST
        if last.exists():
            os.replace(last, run_dir / PREV)
        os.replace(tmp, last)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return run_dir / LAST


def _load(path: Path, expected_format: str | tuple[str, ...] | None = None) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file; pass a generator.pt, a run folder or last.pt")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle means a corrupt or foreign file
        reason = (str(exc).strip().splitlines() or [""])[0][:160]  # torch's messages run over many lines
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {reason}); "
                              "the file is truncated, corrupt or not an srgan checkpoint") from None
    if not isinstance(obj, dict) or "format" not in obj or "config" not in obj:
        raise CheckpointError(f"{path}: not an srgan checkpoint (no 'format'/'config' entry)")
    if expected_format is not None:
        formats = (expected_format,) if isinstance(expected_format, str) else expected_format
        if obj["format"] not in formats:
            raise CheckpointError(f"{path}: format {obj['format']!r}, expected one of {formats}")
    return obj


def load_checkpoint(run_dir: Path) -> dict | None:
    """The newest readable training checkpoint of ``run_dir`` (``last.pt``, else ``prev.pt``).

    Returns:
        dict or None: the checkpoint, or None when the folder holds none.

    Raises:
        CheckpointError: when checkpoint files exist but none can be read.
    """
    run_dir = Path(run_dir)
    errors = []
    for name in (LAST, PREV):
        path = run_dir / name
        if path.is_file():
            try:
                return _load(path, FORMAT_TRAIN)
            except CheckpointError as exc:  # fall back to the previous checkpoint
                errors.append(str(exc))
    if errors:
        raise CheckpointError("; ".join(errors) + f": delete {run_dir} to start again")
    return None


def save_generator(path: Path, generator: torch.nn.Module, cfg: TrainConfig, step: int) -> Path:
    """Write the final generator (state dict on the CPU + config + step) atomically."""
    state = {
        "format": FORMAT_GENERATOR,
        "generator": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
        "config": cfg.to_dict(),
        "step": step,
    }
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_generator(path, device="cpu"):
    """Load a trained generator for inference.

    Args:
        path: a ``generator.pt``, a run folder (its ``generator.pt``, else its
            newest training checkpoint) or a training checkpoint (``last.pt``).
        device: where to put the network (``"cpu"``, ``"cuda"``, a torch.device).

    Returns:
        tuple: ``(Generator in eval mode, TrainConfig)``.

    Raises:
        CheckpointError: if the file is missing, corrupt or does not fit the network
            its config describes (the message names the file).
    """
    path = Path(path)
    obj = None
    if path.is_dir():
        if (path / GENERATOR).is_file():
            path = path / GENERATOR
        else:
            obj = load_checkpoint(path)
            if obj is None:
                raise CheckpointError(f"{path}: folder holds no generator.pt or last.pt; "
                                      "pass the run folder of `srgan train`")
    if obj is None:
        obj = _load(path, (FORMAT_GENERATOR, FORMAT_TRAIN))
    try:
        cfg = TrainConfig.from_dict(obj["config"])
    except UserError as exc:
        raise CheckpointError(f"{path}: its config is unusable ({exc})") from None
    net = models.Generator(scale=cfg.scale, num_feat=cfg.num_feat, num_block=cfg.num_block,
                           upsample_skip=cfg.upsample_skip)
    try:
        net.load_state_dict(obj["generator"])
    except (RuntimeError, KeyError) as exc:  # torch lists every mismatch on its own line: keep one
        first = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line or "Missing" in line),
                     str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise CheckpointError(f"{path}: weights do not fit the generator its config describes ({first[:200]})") from None
    return net.to(device).eval(), cfg
