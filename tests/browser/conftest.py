"""A JupyterLab server and a headless Chromium for the real-browser tests (``pytest -m browser``).

The server runs from this environment (``sys.executable -m jupyterlab``) with ``SRGAN_PROFILE=smoke``,
on 127.0.0.1, a free port and a random token, over a temporary copy of ``notebooks/`` (the committed
notebooks stay output-free). Chromium is the system's (Debian ``chromium``), driven by Playwright for
Python: Playwright's own browser download is never needed. Without Chromium or Playwright the tests
skip, except under CI (``CI=true``), where they fail: CI must run them (``.ci/run`` installs Chromium).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: JupyterLab settings for a test run, written into a fresh settings folder (the user's are not read).
LAB_SETTINGS = {
    # every cell attached to the DOM, so that every output (and its images) can be checked and captured
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    # no "Would you like to receive Jupyter news?" toast over the page, no request to the internet
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    # the copies are never written back, not even by autosave
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
}
SERVER_START_S = 90  # a cold start (extensions, kernelspecs) takes ~5 s here


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _unavailable(reason: str):
    """Skip, or fail under CI, where the browser test must run."""
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: the browser test must run in CI, so this is a failure, not a skip)")
    pytest.skip(reason)


def chromium_path() -> str | None:
    """The system's Chromium (Debian package ``chromium``)."""
    return shutil.which("chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running JupyterLab server: its URL, token, the notebooks' folder and a tiny REST client."""

    def __init__(self, url: str, token: str, root: Path, log: Path):
        self.url, self.token, self.root, self.log = url, token, root, log

    def api(self, method: str, path: str):
        req = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def notebook_url(self, name: str) -> str:
        # ?reset: a fresh workspace, not the layout a previous test left
        return f"{self.url}/lab/tree/notebooks/{name}?reset&token={self.token}"

    def shutdown_kernels(self) -> None:
        for kernel in self.api("GET", "kernels"):
            try:
                self.api("DELETE", f"kernels/{kernel['id']}")
            except urllib.error.HTTPError as err:
                if err.code != 404:  # already gone
                    raise

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"


def _write_settings(settings_dir: Path) -> None:
    for plugin, values in LAB_SETTINGS.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM (the server then shuts its kernels down), SIGKILL to the group if that does not end it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def browser():
    """Headless system Chromium under Playwright; closed (no process left) at the end of the session."""
    exe = chromium_path()
    if exe is None:
        _unavailable("no Chromium on PATH: install it with `apt-get install chromium` (Debian) to run the "
                     "JupyterLab browser test")
    try:
        # deferred: only the browser tests need Playwright
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable('Playwright for Python is missing: `pip install -e ".[dev]"` (never `playwright install`: '
                     "the test uses the system's Chromium)")
    pw = sync_playwright().start()
    try:
        # --disable-dev-shm-usage: containers often have a 64 MB /dev/shm, too small for a renderer
        chromium = pw.chromium.launch(executable_path=exe, headless=True, args=["--disable-dev-shm-usage"])
    except Exception:
        pw.stop()
        raise
    try:
        yield chromium
    finally:
        chromium.close()
        pw.stop()


@pytest.fixture(scope="session")
def jupyterlab(browser, tmp_path_factory):
    """A JupyterLab server over a temporary copy of the notebooks; terminated, with its kernels, at the end.

    Requests ``browser`` first, so that a missing Chromium skips before a server is started.
    """
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "work"
    shutil.copytree(PROJECT_ROOT / "notebooks", root / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (root / "data").symlink_to(PROJECT_ROOT / "data", target_is_directory=True)  # ../data from a notebook
    _write_settings(base / "settings")
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "SRGAN_PROFILE": "smoke",
        # the kernels' runs and tables go to the temporary folder, not the repository's runs/ and results/
        "SRGAN_RUNS": str(base / "runs"),
        "SRGAN_RESULTS": str(base / "results"),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
        # no user configuration or IPython startup files in the way
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "IPYTHONDIR": str(base / "ipython"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           f"--LabApp.user_settings_dir={base / 'settings'}", f"--LabApp.workspaces_dir={base / 'workspaces'}",
           # window.jupyterapp: the test reads the notebook's model (its error outputs) besides the page
           "--LabApp.expose_app_in_browser=True"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = base / "jupyterlab.log"
    with open(log, "wb") as out:
        # a session of its own: SIGKILL can reach the whole group if SIGTERM is not enough
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, log)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {proc.returncode}:\n{lab.log_tail()}")
            try:
                lab.api("GET", "status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within {SERVER_START_S} s:\n{lab.log_tail()}")
                time.sleep(0.5)
        yield lab
    finally:
        try:
            if proc.poll() is None:
                lab.shutdown_kernels()
        except (OSError, ValueError) as err:  # a half-dead server: SIGTERM/SIGKILL below still end it
            warnings.warn(f"could not shut the kernels down through the REST API: {err}")
        _stop(proc)


@pytest.fixture
def page(browser, jupyterlab):
    """A fresh browser context and page; afterwards the page is closed and every kernel shut down."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()
        jupyterlab.shutdown_kernels()
