"""Decode-once image store: every training image is decoded from disk once.

The public code the paper builds on decodes a whole 2K PNG for every 88-pixel
crop (~15 samples/s on a 2-core CPU). Here each image is decoded once into a
uint8 buffer and every crop is a NumPy view of it:

* ``ram``  -- one in-memory ``uint8`` buffer (fastest; needs the images' full
  size in memory).
* ``mmap`` -- one ``uint8`` file under ``<data>/cache/`` built once (with a
  progress bar) and memory-mapped afterwards; the operating system pages in
  what the crops touch, so it works when the images do not fit in memory. The
  file is keyed by the folder, its file names, sizes and modification times, so
  that a changed folder is rebuilt and an unchanged one is reused.
* ``auto`` -- ``ram`` when the decoded images take at most half of the
  available memory (``psutil.virtual_memory().available``), else ``mmap``; the
  environment variable ``SRGAN_CACHE=ram|mmap`` overrides it.

A cache file is built under a ``filelock.FileLock``, so that processes sharing a
data folder (DDP ranks, parallel runs) build it once and then share it.

Footprint: DIV2K's 800 training images decode to ~6.6 GB of uint8 RGB (about
2040 x 1350 x 3 bytes each), its 100 validation images to ~0.8 GB; BSDS100 to
~46 MB, the embedded samples to a few MB.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
from filelock import FileLock
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from .datasets import data_root
from .errors import ConfigError, ImageReadError
from .fileio import atomic_write_text, temp_path
from .images import list_images, load_image

CACHE_MODES = ("auto", "ram", "mmap")
#: Bumped when the cache file layout changes, so that old files are rebuilt.
_FORMAT = 1
#: ``auto`` keeps images in RAM only below this share of the available memory:
#: the model, the optimiser and the OS page cache need the rest.
RAM_FRACTION = 0.5


@dataclass
class ImageStore:
    """Decoded images of one folder.

    Attributes:
        folder: the folder the images came from.
        names: file names of the decodable images, sorted.
        images: one ``H x W x 3`` uint8 array per name (views of one buffer).
        unreadable: ``(file name, reason)`` for each file that could not be decoded.
        mode: ``"ram"`` or ``"mmap"``.
        cache_file: the memory-mapped file (``None`` in ``ram`` mode).
        built: True when this call decoded the images (False: reused a cache file).
    """

    folder: Path
    names: list[str]
    images: list[np.ndarray]
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    mode: str = "ram"
    cache_file: Path | None = None
    built: bool = True

    @property
    def nbytes(self) -> int:
        return sum(img.nbytes for img in self.images)


def choose_mode(cache: str, nbytes: int) -> str:
    """Resolve ``cache`` (``auto``/``ram``/``mmap``) for ``nbytes`` of decoded images.

    ``auto``: ``$SRGAN_CACHE`` if set, else ``ram`` when ``nbytes`` is at most
    :data:`RAM_FRACTION` of the memory available now, else ``mmap``.
    """
    if cache not in CACHE_MODES:
        raise ConfigError(f"cache={cache!r}: use one of {CACHE_MODES}")
    if cache == "auto":
        env = os.environ.get("SRGAN_CACHE", "").strip().lower()
        if env and env != "auto":
            if env not in CACHE_MODES:
                raise ConfigError(f"SRGAN_CACHE={env!r}: use one of {CACHE_MODES}")
            return env
        return "ram" if nbytes <= RAM_FRACTION * psutil.virtual_memory().available else "mmap"
    return cache


def default_cache_dir() -> Path:
    """``<data root>/cache`` (:func:`srgan_lib.datasets.data_root`)."""
    return data_root() / "cache"


def _folder_key(folder: Path, files: list[Path]) -> str:
    stats = []
    for p in files:
        st = p.stat()
        stats.append([p.name, st.st_size, st.st_mtime_ns])
    blob = json.dumps({"format": _FORMAT, "folder": str(folder), "files": stats}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _header_shape(path: Path) -> tuple[int, int] | str:
    """(H, W) from the file header without decoding, or the reason it cannot be read."""
    try:
        with Image.open(path) as img:
            w, h = img.size
    except UnidentifiedImageError:
        return "not an image file"
    except (OSError, SyntaxError, ValueError) as exc:
        return f"unreadable header ({exc})"
    return h, w


def _decode_into(paths, shapes, offsets, buf, progress: bool, desc: str) -> list[str | None]:
    """Decode every file into ``buf`` at its offset; returns None or a failure reason per file."""

    def work(i):
        h, w = shapes[i]
        try:
            img = load_image(paths[i])
        except ImageReadError as exc:
            return str(exc).removeprefix(f"{paths[i]}: ")
        if img.shape[:2] != (h, w):
            return f"decoded size {img.shape[:2]} differs from its header {(h, w)}"
        buf[offsets[i] : offsets[i] + h * w * 3] = img.reshape(-1)
        return None

    # PIL releases the GIL while decoding, so threads use every core.
    workers = min(len(paths), os.cpu_count() or 1) or 1
    with ThreadPoolExecutor(workers) as pool:
        it = pool.map(work, range(len(paths)))
        return list(tqdm(it, total=len(paths), desc=desc, unit="img", disable=not progress, leave=False))


def _write_json(path: Path, obj: dict) -> None:
    atomic_write_text(path, json.dumps(obj))


def _views(buf, entries) -> list[np.ndarray]:
    return [buf[off : off + h * w * 3].reshape(h, w, 3) for off, h, w in entries]


def _load_cached(meta_path: Path, data_path: Path, key: str):
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("key") != key or not data_path.is_file() or data_path.stat().st_size != meta.get("nbytes"):
        return None
    if meta["nbytes"] == 0:
        return meta, np.zeros(0, np.uint8)
    return meta, np.memmap(data_path, dtype=np.uint8, mode="r", shape=(meta["nbytes"],))


def load_store(folder, cache: str = "auto", cache_dir=None, progress: bool = True) -> ImageStore:
    """Decode every image of ``folder`` once, into RAM or a reusable memory-mapped file.

    Args:
        folder: a folder of images (files without an image extension are ignored).
        cache: ``"auto"``, ``"ram"`` or ``"mmap"`` (see the module docstring).
        cache_dir: where ``mmap`` files live (default ``<data>/cache``).
        progress: show a progress bar while decoding.

    Returns:
        ImageStore: decoded ``H x W x 3`` uint8 images and the files that failed.

    Raises:
        DataError: if ``folder`` is not a folder or holds no image file.
    """
    folder = Path(folder).resolve()
    if cache not in CACHE_MODES:
        raise ConfigError(f"cache={cache!r}: use one of {CACHE_MODES}")
    files = list_images(folder)
    key = _folder_key(folder, files)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    stem = f"{folder.name}-{key[:16]}"
    data_path, meta_path = cache_dir / f"{stem}.u8", cache_dir / f"{stem}.json"

    if cache != "ram":  # an existing cache file costs nothing to reuse
        hit = _load_cached(meta_path, data_path, key)
        if hit is not None:
            return _from_meta(folder, hit[0], hit[1], data_path)

    shapes_or_reasons = [_header_shape(p) for p in files]
    ok = [i for i, s in enumerate(shapes_or_reasons) if not isinstance(s, str)]
    unreadable = [(files[i].name, s) for i, s in enumerate(shapes_or_reasons) if isinstance(s, str)]
    shapes = [shapes_or_reasons[i] for i in ok]
    offsets = np.concatenate([[0], np.cumsum([h * w * 3 for h, w in shapes])]).astype(np.int64)
    nbytes = int(offsets[-1])
    mode = choose_mode(cache, nbytes)
    paths = [files[i] for i in ok]
    desc = f"decoding {folder.name}"

    if mode == "ram":
        buf = np.empty(nbytes, np.uint8)
        failures = _decode_into(paths, shapes, offsets, buf, progress, desc)
        meta = _meta(key, folder, paths, shapes, offsets, failures, unreadable, nbytes)
        store = _from_meta(folder, meta, buf, None, mode="ram")
        store.built = True
        return store

    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(cache_dir / f"{stem}.lock"):  # concurrent processes build the file once
        hit = _load_cached(meta_path, data_path, key)  # another process may have built it meanwhile
        if hit is not None:
            return _from_meta(folder, hit[0], hit[1], data_path)
        tmp = temp_path(cache_dir, f".{stem}.", ".u8")
        try:
            if nbytes:
                buf = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=(nbytes,))
                failures = _decode_into(paths, shapes, offsets, buf, progress, f"building cache {data_path.name}")
                buf.flush()
                del buf
            else:
                failures = []
            os.replace(tmp, data_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        meta = _meta(key, folder, paths, shapes, offsets, failures, unreadable, nbytes)
        _remove_stale(cache_dir, folder, keep=stem)
        _write_json(meta_path, meta)  # written last: its presence means the data file is complete
        buf = np.memmap(data_path, dtype=np.uint8, mode="r", shape=(nbytes,)) if nbytes else np.zeros(0, np.uint8)
        store = _from_meta(folder, meta, buf, data_path)
        store.built = True
        return store


def _meta(key, folder, paths, shapes, offsets, failures, unreadable, nbytes) -> dict:
    entries, bad = [], list(unreadable)
    for p, (h, w), off, fail in zip(paths, shapes, offsets[:-1], failures):
        if fail is None:
            entries.append([p.name, int(off), h, w])
        else:
            bad.append((p.name, fail))
    return {"key": key, "folder": str(folder), "nbytes": nbytes, "entries": entries,
            "unreadable": sorted(bad)}


def _from_meta(folder, meta, buf, data_path, mode="mmap") -> ImageStore:
    entries = meta["entries"]
    return ImageStore(
        folder=folder,
        names=[e[0] for e in entries],
        images=_views(buf, [(e[1], e[2], e[3]) for e in entries]),
        unreadable=[tuple(u) for u in meta["unreadable"]],
        mode=mode,
        cache_file=data_path,
        built=False,
    )


def _remove_stale(cache_dir: Path, folder: Path, keep: str) -> None:
    """Delete older cache files of the same folder (its contents changed): they can be GBs."""
    for meta_path in cache_dir.glob(f"{folder.name}-*.json"):
        if meta_path.stem == keep:
            continue
        try:
            if json.loads(meta_path.read_text()).get("folder") != str(folder):
                continue
        except (OSError, ValueError):
            continue
        for p in (meta_path, meta_path.with_suffix(".u8"), meta_path.with_suffix(".lock")):
            p.unlink(missing_ok=True)
