"""Common fixtures: the real benchmark images tracked in ``data/`` (see data/README.md), tiny data roots."""

from __future__ import annotations

import io
import os
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("SRGAN_PROFILE", "smoke")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported: see the Makefile

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: The benchmark images tracked in the repository; they do not move with $SRGAN_DATA.
BENCHMARK_DATA = PROJECT_ROOT / "data"


def benchmark_path(*parts: str) -> Path:
    """A tracked file or folder under ``data/``; its absence fails the test (there is no skip path)."""
    path = BENCHMARK_DATA.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: it is tracked in the repository (data/README.md); restore it with git")
    return path


@pytest.fixture(scope="session", autouse=True)
def _own_data_root(tmp_path_factory):
    """Downloaded and generated data go to a fresh folder for the session: a BSDS200 installed in ``data/``
    (which the quick profile then trains on) or caches there must not change what the tests see."""
    patch = pytest.MonkeyPatch()
    patch.setenv("SRGAN_DATA", str(tmp_path_factory.mktemp("srgan_data")))
    yield
    patch.undo()


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tests use tiny tensors: one thread is as fast, and immune to a second process on the cores.

    ``SRGAN_TEST_THREADS=2`` (``make test-kernels``) splits reductions differently, as another machine would.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("SRGAN_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(before)


@pytest.fixture
def set5_dir() -> Path:
    return benchmark_path("Set5", "HR")


@pytest.fixture
def set14_dir() -> Path:
    return benchmark_path("Set14", "HR")


@pytest.fixture
def div2k_hr_0004() -> Path:
    return benchmark_path("DIV2K_samples", "DIV2K_train_HR", "0004.png")


@pytest.fixture
def div2k_lr_0004_x2() -> Path:
    return benchmark_path("DIV2K_samples", "DIV2K_train_LR_bicubic", "X2", "0004x2.png")


def bicubic_pair(path, scale: int = 2):
    """``(sr, hr)``: an image file mod-cropped (``hr``) and its MATLAB-bicubic down-and-up (``sr``), uint8."""
    # deferred: torch loads only after OMP_WAIT_POLICY is set above
    from srgan_lib import images, resize

    hr = images.mod_crop(images.load_image(path), scale)
    return resize.imresize(resize.imresize(hr, 1 / scale), scale), hr


def random_rgb(seed: int, h: int = 40, w: int = 48):
    """An ``h x w x 3`` uint8 image of seeded noise."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def noise_folder(folder: Path, n: int, h: int, w: int, seed: int) -> Path:
    """``folder`` (created) holding ``n`` PNGs ``img<i>.png`` of ``h x w`` seeded noise: tiny training or
    validation sets for the tests that train."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


@pytest.fixture
def folder(tmp_path) -> Path:
    """Five random RGB PNGs of 40 x 48 pixels (``random_rgb(0..4)``)."""
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(5):
        Image.fromarray(random_rgb(i)).save(d / f"img{i}.png")
    return d


@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    """An empty SRGAN_DATA folder for the test."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("SRGAN_DATA", str(root))
    return root


def _jpg_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), seed, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def bsds_tgz():
    """A BSDS300-images.tgz look-alike: 3 test ids listed in iids_test.txt, 2 train ids in iids_train.txt,
    1 unlisted test image."""
    members = {"BSDS300/iids_test.txt": b"3096\n8023\n12084\n", "BSDS300/iids_train.txt": b"2092\n8049\n"}
    for iid in (3096, 8023, 12084, 99999):
        members[f"BSDS300/images/test/{iid}.jpg"] = _jpg_bytes(iid % 250)
    for iid in (2092, 8049):
        members[f"BSDS300/images/train/{iid}.jpg"] = _jpg_bytes(iid % 250)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue(), members


class FileServer:
    """A threaded HTTP server on 127.0.0.1 serving ``files`` (path -> bytes) with Range support.

    ``drops``: how many responses are cut after ``drop_after`` body bytes (the
    connection is shut down). ``ignore_range``: answer 200 with the whole file.
    ``requests`` records ``(path, Range header)`` of every request.
    """

    def __init__(self, files, drops=0, drop_after=10_000, ignore_range=False):
        self.files, self.drops, self.drop_after, self.ignore_range = dict(files), drops, drop_after, ignore_range
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                rng = self.headers.get("Range")
                outer.requests.append((self.path, rng))
                data = outer.files.get(self.path.lstrip("/"))
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                if rng and not outer.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.drops > 0:
                    outer.drops -= 1
                    self.wfile.write(body[: outer.drop_after])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)  # the client sees the connection drop
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(files, **kw):
        servers.append(FileServer(files, **kw))
        return servers[-1]

    yield start
    for s in servers:
        s.close()
