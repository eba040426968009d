"""The main job: run the numbered notebooks headless, in order, and say where the results are.

``make reproduce`` calls :func:`reproduce` (through ``srgan reproduce``). Each
notebook is executed in a fresh kernel with ``SRGAN_PROFILE`` set, and its
executed copy (with outputs) is written to ``<results>/notebooks/``; the
committed notebooks stay output-free. ``srgan reproduce --jobs`` instead prints
one ``srgan train`` command per cell of the ablation grid, for a scheduler's job
array (see the README).
"""

from __future__ import annotations

import logging
import os
import shlex
import time
from pathlib import Path

from . import config
from .errors import ConfigError
from .fileio import atomic_write

logger = logging.getLogger(__name__)

NOTEBOOK_DIR = config.PROJECT_ROOT / "notebooks"


def notebook_paths(only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks in order (optionally those whose name starts with one of ``only``)."""
    paths = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
        if not paths:
            raise ConfigError(f"--only {only}: no notebook in {NOTEBOOK_DIR} starts with that")
    return paths


def run_notebook(path: Path, out_dir: Path, timeout: int | None = None) -> float:
    """Execute one notebook in a fresh kernel; write the executed copy atomically; return seconds."""
    import nbformat  # deferred: nbclient starts Jupyter machinery only the main job needs
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    finally:  # keep the executed copy, also of a failing notebook, to show where it failed
        atomic_write(out_dir / path.name, lambda tmp: nbformat.write(nb, tmp))
    return time.perf_counter() - start


def reproduce(profile_name: str | None = None, only: list[str] | None = None) -> dict:
    """Run notebooks 01-05 for ``profile_name``; return ``{notebook: seconds}`` (progress logged at INFO)."""
    profile = config.get_profile(profile_name)
    os.environ["SRGAN_PROFILE"] = profile.name  # inherited by every kernel
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep: see the Makefile
    out = config.results_dir(profile.name)
    timings: dict[str, float] = {}
    logger.info(f"reproducing with profile '{profile.name}' ({profile.description})")
    for path in notebook_paths(only):
        logger.info(f"  running {path.name} ...")
        timings[path.name] = run_notebook(path, out / "notebooks")
        logger.info(f"  {path.name}: {timings[path.name]:.0f} s")
    total = sum(timings.values())
    logger.info(f"done in {total / 60:.1f} min. Executed notebooks: {out / 'notebooks'}")
    for sub in ("tables", "figures"):
        if (out / sub).is_dir():
            files = sorted(p.name for p in (out / sub).iterdir() if not p.name.startswith("."))
            logger.info(f"{sub}: {out / sub} ({', '.join(files)})")
    return timings


def job_commands(profile_name: str | None = None, seeds: tuple[int, ...] | None = None) -> list[str]:
    """One ``srgan train`` command per grid cell, for a job array (each cell is independent)."""
    profile = config.get_profile(profile_name)
    cmds = []
    for cfg in config.ablation_grid(profile, seeds):
        args = ["srgan", "train", "--profile", profile.name, "--scale", str(cfg.scale),
                "--crop", str(cfg.crop_size), "--seed", str(cfg.seed)]
        if not cfg.use_tv:
            args.append("--no-tv")
        cmds.append(shlex.join(args))
    return cmds
