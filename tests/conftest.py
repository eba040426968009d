"""Common fixtures: the real benchmark images tracked in ``data/`` (see data/README.md), tiny data roots."""

from __future__ import annotations

import os
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
