"""srgan_lib.cache: RAM and memory-mapped stores, the file lock, stale files, the automatic mode."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import psutil
import pytest
from conftest import random_rgb as _rgb
from filelock import FileLock
from PIL import Image

from srgan_lib import cache
from srgan_lib.errors import ConfigError
from srgan_lib.images import list_images

NBYTES = 5 * 40 * 48 * 3  # the decoded size of the folder fixture


def _store(folder, cache_dir, mode="mmap"):
    return cache.load_store(folder, cache=mode, cache_dir=cache_dir, progress=False)


def _lock_path(folder, cache_dir):
    """The lock file of ``folder``'s cache entry (named as load_store names it)."""
    folder = folder.resolve()
    return cache_dir / f"{folder.name}-{cache._folder_key(folder, list_images(folder))[:16]}.lock"


def _data_files(cache_dir):
    return sorted(p.name for p in cache_dir.iterdir() if p.suffix == ".u8")


def test_ram_and_mmap_stores_hold_the_same_images(folder, tmp_path):
    (folder / "fake.png").write_text("an error page saved as .png")
    ram, mapped = _store(folder, tmp_path / "cache", "ram"), _store(folder, tmp_path / "cache", "mmap")
    assert (ram.mode, mapped.mode) == ("ram", "mmap") and ram.cache_file is None
    assert ram.names == mapped.names == [f"img{i}.png" for i in range(5)]
    assert ram.unreadable == mapped.unreadable == [("fake.png", "not an image file")]
    assert ram.nbytes == mapped.nbytes == NBYTES
    for name, a, b in zip(ram.names, ram.images, mapped.images):
        np.testing.assert_array_equal(a, np.asarray(Image.open(folder / name)))  # PIL itself
        np.testing.assert_array_equal(b, a)
    assert isinstance(mapped.images[0].base, np.memmap) or isinstance(mapped.images[0], np.memmap)


def test_mmap_cache_is_built_once_and_reused(folder, tmp_path):
    first = _store(folder, tmp_path / "cache")
    assert first.mode == "mmap" and first.built and first.cache_file.stat().st_size == NBYTES
    mtime = first.cache_file.stat().st_mtime_ns
    second = _store(folder, tmp_path / "cache")
    assert not second.built and second.cache_file == first.cache_file
    assert second.cache_file.stat().st_mtime_ns == mtime
    for a, b in zip(first.images, second.images):
        np.testing.assert_array_equal(a, b)
    assert not _store(folder, tmp_path / "cache", "auto").built  # auto reuses an existing cache file too


def test_a_changed_folder_is_rebuilt_and_its_stale_files_removed(folder, tmp_path):
    cache_dir = tmp_path / "cache"
    # another folder with the same name keeps its cache: only this folder's old entries are stale
    other = tmp_path / "elsewhere" / folder.name
    other.mkdir(parents=True)
    Image.fromarray(_rgb(7)).save(other / "x.png")
    kept = _store(other, cache_dir).cache_file
    old = _store(folder, cache_dir).cache_file
    assert len(_data_files(cache_dir)) == 2
    Image.fromarray(_rgb(42)).save(folder / "img9.png")
    new = _store(folder, cache_dir)
    assert new.built and len(new.names) == 6 and new.cache_file != old
    stale = [old, old.with_suffix(".json"), old.with_suffix(".lock")]
    assert not any(p.exists() for p in stale)
    assert _data_files(cache_dir) == sorted([kept.name, new.cache_file.name])
    assert not _store(other, cache_dir).built


def test_builders_wait_for_the_file_lock_and_build_one_cache(folder, tmp_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    results = []
    workers = [threading.Thread(target=lambda: results.append(_store(folder, cache_dir))) for _ in range(3)]
    with FileLock(_lock_path(folder, cache_dir)):  # as a builder in another process would hold it
        for t in workers:
            t.start()
        time.sleep(0.3)  # ample for five tiny PNGs: without the lock every thread would be done
        assert all(t.is_alive() for t in workers) and not _data_files(cache_dir)
    for t in workers:
        t.join(30)
    assert len(results) == 3 and sum(s.built for s in results) == 1
    assert len(_data_files(cache_dir)) == 1 and len({s.cache_file for s in results}) == 1
    for s in results[1:]:
        for a, b in zip(results[0].images, s.images):
            np.testing.assert_array_equal(a, b)


_CHILD = """
import sys
from pathlib import Path
from srgan_lib import cache
Path(sys.argv[3]).touch()
store = cache.load_store(sys.argv[1], cache="mmap", cache_dir=sys.argv[2], progress=False)
print("built" if store.built else "reused", store.cache_file)
"""


def test_two_processes_build_one_cache(folder, tmp_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    marks = [tmp_path / f"started{i}" for i in range(2)]
    with FileLock(_lock_path(folder, cache_dir)):  # both processes reach the lock before either can build
        procs = [subprocess.Popen([sys.executable, "-c", _CHILD, str(folder), str(cache_dir), str(m)],
                                  stdout=subprocess.PIPE, text=True) for m in marks]
        deadline = time.monotonic() + 60
        while not all(m.exists() for m in marks) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert all(p.poll() is None for p in procs) and not _data_files(cache_dir)
    outputs = [p.communicate(timeout=60)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(o[0] for o in outputs) == ["built", "reused"] and outputs[0][1] == outputs[1][1]
    assert len(_data_files(cache_dir)) == 1


def test_auto_mode_follows_the_available_memory(folder, tmp_path, monkeypatch):
    monkeypatch.delenv("SRGAN_CACHE", raising=False)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=2 * NBYTES))
    assert cache.choose_mode("auto", NBYTES) == "ram"  # exactly RAM_FRACTION = 1/2 of the available memory
    assert cache.choose_mode("auto", NBYTES + 1) == "mmap"
    store = _store(folder, tmp_path / "cache", "auto")
    assert store.mode == "ram" and not (tmp_path / "cache").exists()
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=2 * NBYTES - 2))
    assert _store(folder, tmp_path / "cache", "auto").mode == "mmap"
    assert cache.choose_mode("ram", 10**15) == "ram" and cache.choose_mode("mmap", 1) == "mmap"
    monkeypatch.setenv("SRGAN_CACHE", "ram")  # the environment overrides the memory
    assert cache.choose_mode("auto", 10**15) == "ram"
    monkeypatch.setenv("SRGAN_CACHE", "gpu")
    with pytest.raises(ConfigError, match="SRGAN_CACHE='gpu'"):
        cache.choose_mode("auto", 1)
    with pytest.raises(ConfigError, match="cache='disk'"):
        _store(folder, tmp_path / "cache", "disk")


def test_default_cache_dir_follows_the_data_root(data_root):
    assert cache.default_cache_dir() == data_root / "cache"
