"""The main job: run the numbered notebooks headless, in order, and say where the results are.

``make reproduce`` calls :func:`reproduce` (through ``srgan reproduce``). Each
notebook is executed in a fresh kernel with ``SRGAN_PROFILE`` set, and its
executed copy (with outputs) is written to ``<results>/notebooks/``; the
committed notebooks stay output-free. While a notebook runs, its progress is
logged: each code cell as ``cell i/n`` (and its seconds when slow), the lines the
kernel writes to stderr (the notebook's own log lines), and its tqdm bars, which
in a kernel are widgets and are read from their widget updates.
``srgan reproduce --jobs`` instead prints one ``srgan train`` command per cell
of the ablation grid, for a scheduler's job array (see the README).
"""

from __future__ import annotations

import html
import logging
import os
import re
import shlex
import tempfile
import time
from pathlib import Path

from . import ablation, config, download, grid
from .errors import ConfigError, DownloadError
from .fileio import atomic_write

logger = logging.getLogger(__name__)

NOTEBOOK_DIR = config.PROJECT_ROOT / "notebooks"
BAR_EVERY = 15.0  # seconds between two log lines of the same running progress bar
SLOW_CELL = 1.0  # seconds from which a cell's duration is logged


def notebook_paths(only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks in order (optionally those whose name starts with one of ``only``)."""
    paths = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
        if not paths:
            raise ConfigError(f"--only {only}: no notebook in {NOTEBOOK_DIR} starts with that")
    return paths


def bar_text(widgets: dict[str, dict], box_id: str) -> str | None:
    """The text of a ``tqdm.notebook`` bar from widget states (``{model id: state}``); None for other widgets.

    Such a bar is an HBox of an HTML label (``desc: 42%``), a progress bar and an HTML label
    (``21/50 [00:04<00:06, 5.1it/s, ...]``), HTML-escaped and padded with figure spaces.
    """
    box = widgets.get(box_id) or {}
    kids = [str(c).removeprefix("IPY_MODEL_") for c in box.get("children") or ()]
    models = [(widgets.get(k) or {}).get("_model_name", "") for k in kids]
    if (box.get("_model_name") != "HBoxModel" or len(kids) != 3 or {models[0], models[2]} != {"HTMLModel"}
            or not models[1].endswith("ProgressModel")):
        return None
    left, right = (html.unescape(widgets[k].get("value") or "").replace("\u2007", " ") for k in (kids[0], kids[2]))
    return f"{left}|{right}"


class _Progress:
    """Log lines while one notebook runs: ``cell i/n``, the kernel's stderr lines, its progress bars."""

    def __init__(self, nb) -> None:
        self.cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
        self.started = time.perf_counter()
        self.stderr = ""  # text after the last newline, not logged yet
        self.boxes: dict[str, tuple[str, str]] = {}  # an HBox's right label -> (the HBox, its middle child)
        self.last_line: dict[str, float] = {}  # HBox (or "stderr") -> when its bar was last logged
        self.finished: set[str] = set()

    def _which(self, index: int) -> str:
        return f"cell {self.cells.index(index) + 1}/{len(self.cells)}" if index in self.cells else f"cell {index}"

    def cell_started(self, cell, cell_index: int, **_) -> None:
        self.started = time.perf_counter()
        first = cell.source.strip().splitlines()[0]
        logger.info(f"    {self._which(cell_index)}: {first[:70]}{' ...' if len(first) > 70 else ''}")

    def cell_done(self, cell, cell_index: int, execute_reply, **_) -> None:
        self._stderr("\n" if self.stderr else "")
        seconds, status = time.perf_counter() - self.started, (execute_reply or {}).get("content", {}).get("status")
        if seconds >= SLOW_CELL or status != "ok":
            logger.info(f"    {self._which(cell_index)} {'done' if status == 'ok' else status} in {seconds:.0f} s")

    def message(self, msg: dict, widgets: dict[str, dict]) -> None:
        """One kernel message (``widgets``: nbclient's widget states, this message's update included)."""
        kind, content = msg["msg_type"], msg["content"]
        state = ((content.get("data") or {}).get("state") or {}) if kind.startswith("comm") else {}
        if kind == "stream" and content.get("name") == "stderr":
            self._stderr(content.get("text", ""))
        elif kind == "comm_open" and state.get("_model_name") == "HBoxModel" and len(state.get("children") or ()) == 3:
            _, bar, right = (str(c).removeprefix("IPY_MODEL_") for c in state["children"])
            self.boxes[right] = (content["comm_id"], bar)
        elif kind == "comm_msg" and content.get("comm_id") in self.boxes and "value" in state:
            (box, bar), now = self.boxes[content["comm_id"]], time.perf_counter()  # the right label changed
            done = (widgets.get(bar, {}).get("value") or 0) >= (widgets.get(bar, {}).get("max") or float("inf"))
            if box in self.finished or (not done and now - self.last_line.get(box, -BAR_EVERY) < BAR_EVERY):
                return
            text = bar_text(widgets, box)
            if text:
                logger.info(f"      {text}")
                self.last_line[box] = now
                if done:
                    self.finished.add(box)

    def _stderr(self, text: str) -> None:
        *lines, self.stderr = (self.stderr + text).split("\n")
        now = time.perf_counter()
        if "\r" in self.stderr and now - self.last_line.get("stderr", 0.0) >= BAR_EVERY:  # a text bar running
            lines.append(self.stderr)
            self.last_line["stderr"] = now
        for line in lines:
            line = line.rstrip("\r").rsplit("\r", 1)[-1].rstrip()  # a text bar redrawn with \r: its last state
            if line:
                logger.info(f"      {line}")


def _kernel_config(socket_dir: str):
    """Kernels talk over Unix sockets in a private folder, not unencrypted TCP (which ipykernel warns about)."""
    from traitlets.config import Config  # deferred with nbclient, which brings it

    if os.name == "nt":  # ZeroMQ has no IPC transport on Windows: TCP on localhost, and ipykernel's warning
        return Config()
    return Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(socket_dir, "kernel")}})


def run_notebook(path: Path, out_dir: Path, timeout: int | None = None) -> float:
    """Execute one notebook in a fresh kernel, logging its progress; write the executed copy atomically.

    Returns the seconds it took.
    """
    import nbformat  # deferred: nbclient starts Jupyter machinery only the main job needs
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    progress = _Progress(nb)

    class _Client(NotebookClient):
        def process_message(self, msg, cell, cell_index):
            output = super().process_message(msg, cell, cell_index)  # updates self.widget_state first
            progress.message(msg, self.widget_state)
            return output

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="srgan-kernel-") as sockets:
        client = _Client(nb, timeout=timeout, kernel_name="python3", config=_kernel_config(sockets),
                         on_cell_execute=progress.cell_started, on_cell_executed=progress.cell_done,
                         resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute()
        finally:  # keep the executed copy, also of a failing notebook, to show where it failed
            atomic_write(out_dir / path.name, lambda tmp: nbformat.write(nb, tmp))
    return time.perf_counter() - start


#: The notebooks whose runs :func:`reproduce` trains before running them (the ablation and the TV study).
TRAINING_NOTEBOOKS = ("05", "06")


def choose_train_data(profile: config.Profile) -> config.Profile:
    """``profile`` on its larger training set (``profile.train_download``) if that is installed or can be
    downloaded now; else ``profile`` as it is, and one warning line saying so.

    The quick profile's larger set is BSDS300's 200 training images (``bsds200``, ~22 MB with the 100 test
    images), tried once by :func:`srgan_lib.download.download` without retries (offline, the attempt fails
    at once). Once installed, :func:`srgan_lib.config.get_profile` trains on it in every process (the
    notebooks' kernels too); the footnotes name the training data and the runs' names carry it
    (:func:`srgan_lib.grid.run_name`), so runs on either set never mix. A ``train_data`` in
    ``$SRGAN_OVERRIDES`` wins (``train_data=samples`` never downloads).
    """
    name = profile.train_download[0] if profile.train_download else None
    if name is None or profile.base.train_data == name or re.search(r"(^|,)\s*train_data\s*=",
                                                                     os.environ.get("SRGAN_OVERRIDES", "")):
        return profile  # none, already on it, or chosen by SRGAN_OVERRIDES
    try:
        download.download(name, retries=0)
    except DownloadError as exc:
        logger.warning(f"training on `{profile.base.train_data}`, not `{name}` (`srgan download {name}` "
                       f"installs it for later runs): {exc}")
        return profile
    return config.get_profile(profile.name)


def reproduce(profile_name: str | None = None, only: list[str] | None = None) -> dict:
    """Train the experiments' runs, then run the numbered notebooks for ``profile_name``.

    The training data are chosen first (:func:`choose_train_data`: the quick profile trains on BSDS300's
    200 training images when it can download them). Every run of the ablation, the MSE-only control and the TV study
    (:func:`srgan_lib.grid.plan`) is trained first, in this process, with progress
    bars and an estimate of the time beforehand; the notebooks then find them
    finished and only score and draw (each within minutes). Returns
    ``{step: seconds}`` (``"training"`` and one entry per notebook).
    """
    profile = choose_train_data(config.get_profile(profile_name))
    os.environ["SRGAN_PROFILE"] = profile.name  # inherited by every kernel
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep: see the Makefile
    out = config.results_dir(profile.name)
    timings: dict[str, float] = {}
    logger.info(f"reproducing with profile '{profile.name}' ({profile.description})")
    paths = notebook_paths(only)
    if any(p.name.startswith(TRAINING_NOTEBOOKS) for p in paths):
        start = time.perf_counter()
        ablation.train_runs(profile, progress=True)
        timings["training"] = time.perf_counter() - start
        logger.info(f"  training: {timings['training']:.0f} s")
    for path in paths:
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
    for cfg in grid.ablation_grid(profile, seeds):
        args = ["srgan", "train", "--profile", profile.name, "--scale", str(cfg.scale),
                "--crop", str(cfg.crop_size), "--seed", str(cfg.seed)]
        if not cfg.use_tv:
            args.append("--no-tv")
        cmds.append(shlex.join(args))
    return cmds
