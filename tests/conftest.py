"""Shared fixtures: the real benchmark images in ../shared/data, tiny data roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("SRGAN_PROFILE", "smoke")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported: see the Makefile

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SRGAN_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test with a clear reason if absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the real benchmark images live in ../shared/data beside the project")
    return path


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tests use tiny tensors: one thread is as fast, and immune to a second process on the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def set5_dir() -> Path:
    return shared_path("Set5", "HR")


@pytest.fixture
def set14_dir() -> Path:
    return shared_path("Set14", "HR")


@pytest.fixture
def bsd100_dir() -> Path:
    return shared_path("BSD100", "HR")


@pytest.fixture
def div2k_hr_0004() -> Path:
    return shared_path("DIV2K_samples", "DIV2K_train_HR", "0004.png")


@pytest.fixture
def div2k_lr_0004_x2() -> Path:
    return shared_path("DIV2K_samples", "DIV2K_train_LR_bicubic", "X2", "0004x2.png")


@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    """An empty SRGAN_DATA folder for the test."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("SRGAN_DATA", str(root))
    return root
