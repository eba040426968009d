"""``srgan download``: a dataset's archives downloaded with resume, checked, extracted atomically.

The archives (address, size, SHA-256, installer) are those of the registry
:data:`srgan_lib.datasets.DATASETS`: ``srgan download div2k`` installs DIV2K's
800 training and 100 validation HR images as ``<data>/DIV2K/DIV2K_train_HR`` and
``<data>/DIV2K/DIV2K_valid_HR``; ``srgan download bsds100`` (or ``bsds200``) fetches
BSDS300 once and installs its 100 test images listed in ``iids_test.txt`` ("BSD100") as
``<data>/BSDS100`` and its 200 training images (``iids_train.txt``) as ``<data>/BSDS200``. ``<data>`` is :func:`srgan_lib.datasets.data_root` unless
``root`` is given.

What the standard library and tqdm do not give, and this module (with
:mod:`srgan_lib.fetch` for the transfer) adds:

* resume -- the download is written to ``<archive>.part``; a dropped connection
  or an interrupted run continues from the bytes already there (HTTP ``Range``)
  instead of starting over; a server that ignores ``Range`` restarts cleanly;
* integrity -- every archive is checked against the SHA-256 recorded in the registry
  before anything is extracted; a mismatch raises :class:`DownloadError` and the
  file is renamed ``*.bad`` so that it is never used;
* atomic extraction -- the archive is extracted into a temporary folder beside
  the destination, its image count checked, a ``.complete`` marker written, and
  only then is the folder renamed into place: a partly extracted folder never
  has the final name;
* idempotence -- a destination holding the marker is left alone ("already
  present"); a second run does nothing and says so;
* other sources -- an archive fetched by other means (``archives=["path"]``) or
  another address (``archives=["https://..."]``, ``mirror="https://host/dir/"``) is
  used instead, verified against the same checksum.

Archive facts (address, size, SHA-256) and where each checksum comes from are in
``docs/references.md`` ("Dataset archives").
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import urllib.parse
from pathlib import Path

from .config import INSTALLED_MARKER
from .datasets import ARCHIVE_IMAGE_SUFFIXES, DATASETS, Archive, data_root, downloadable
from .errors import DownloadError
from .fetch import fetch, safe_extract, sha256sum
from .fileio import atomic_write_text

logger = logging.getLogger(__name__)

MARKER = INSTALLED_MARKER


def _count_images(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.is_file() and p.suffix.lower() in ARCHIVE_IMAGE_SUFFIXES)


def is_complete(folder: Path) -> bool:
    """True when ``folder`` was fully installed (it holds the ``.complete`` marker)."""
    return (Path(folder) / MARKER).is_file()


def verify(path: Path, archive: Archive, progress: bool = False, move_bad: bool = True) -> None:
    """Check ``path`` against ``archive``'s recorded size and SHA-256.

    Raises:
        DownloadError: on a mismatch; with ``move_bad`` the file is renamed ``*.bad``.
    """
    size = path.stat().st_size
    problem = None
    if archive.size is not None and size != archive.size:
        problem = f"has {size:,} bytes, expected {archive.size:,}"
    else:
        digest = sha256sum(path, progress)
        if digest != archive.sha256:
            problem = f"has SHA-256 {digest}, expected {archive.sha256} ({archive.checksum_source or 'recorded'})"
    if problem is None:
        return
    where = str(path)
    if move_bad:
        bad = path.with_name(path.name + ".bad")
        os.replace(path, bad)
        where = f"{path} (moved aside to {bad.name}, not used)"
    raise DownloadError(f"{where} {problem}: the download is corrupt or the server's file changed; "
                        f"run again to download afresh, or fetch {archive.filename} by other means and pass --archive PATH")


def _install(archive: Archive, path: Path, root: Path, progress: bool) -> Path:
    """Extract ``path`` and rename the finished folder into place (see the module docstring)."""
    target = root / archive.target
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.extract-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.extract-"))
    try:
        safe_extract(path, tmp / "raw", progress)
        staging = tmp / target.name
        archive.install(tmp / "raw", staging, target.name)
        n = _count_images(staging)
        if n != archive.count:
            raise DownloadError(f"{path} yields {n} images for {archive.target}, expected {archive.count}: "
                                "is it the right archive?")
        (staging / MARKER).write_text(json.dumps({"archive": archive.filename, "sha256": archive.sha256,
                                                  "images": n}) + "\n")
        os.rename(staging, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _match_sources(archives: tuple[Archive, ...], sources) -> dict[str, str]:
    """Map archive file names to the user's ``--archive`` paths or URLs."""
    chosen: dict[str, str] = {}
    names = [a.filename for a in archives]
    for src in sources or ():
        is_url = urllib.parse.urlparse(str(src)).scheme in ("http", "https", "ftp", "file")
        base = Path(urllib.parse.urlparse(str(src)).path if is_url else str(src)).name
        if not is_url and not Path(src).expanduser().is_file():
            raise DownloadError(f"--archive {src}: no such file")
        match = [a for a in archives if a.filename == base]
        if not match and len(archives) == 1:
            match = list(archives)
        if not match and not is_url:
            digest = sha256sum(Path(src).expanduser(), progress=True)
            match = [a for a in archives if a.sha256 == digest]
        if not match:
            raise DownloadError(f"--archive {src}: matches none of {', '.join(names)} "
                                "(by file name or checksum): pass one of those archives")
        chosen[match[0].filename] = str(src)
    return chosen


def download(dataset, root=None, archives=(), mirror: str | None = None, retries: int = 5,
             keep_archive: bool = False, progress: bool = True, backoff: float = 2.0) -> list[Path]:
    """Download, verify and install a dataset; does nothing for parts already installed.

    Each step is logged at INFO under ``srgan_lib.download`` (:mod:`srgan_lib.log`).

    Args:
        dataset: a downloadable name of :data:`srgan_lib.datasets.DATASETS` (``"div2k"``,
            ``"bsds100"``), or a tuple of :class:`srgan_lib.datasets.Archive`.
        root: the data folder (default :func:`srgan_lib.datasets.data_root`).
        archives: paths or URLs of archives fetched by other means; matched to the
            dataset's archives by file name (or checksum) and verified like a download.
        mirror: an address the archive file names are appended to, used instead of
            the official one.
        retries: reconnections after a dropped connection, each resuming.
        keep_archive: keep a downloaded archive after extraction (default: delete it;
            a file passed in ``archives`` is never deleted or renamed).
        progress: progress bars.
        backoff: seconds of the first pause between retries (then 2x, 3x, ...).

    Returns:
        list[Path]: the installed folders.

    Raises:
        DownloadError: a failed download, a checksum mismatch, an unexpected archive, or a
            dataset that is not downloaded.
    """
    if isinstance(dataset, str):
        if dataset not in DATASETS:
            raise DownloadError(f"unknown dataset {dataset!r}: use one of {', '.join(downloadable())}")
        if not DATASETS[dataset].archives:
            raise DownloadError(f"{dataset} needs no download ({DATASETS[dataset].description}): use it by name; "
                                f"`srgan download` fetches {', '.join(downloadable())}")
        name, parts = dataset, DATASETS[dataset].archives
    else:
        name, parts = "dataset", tuple(dataset)
    root = Path(root if root is not None else data_root()).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the data folder {root} ({exc.strerror or exc}): "
                            "pass --root (or set SRGAN_DATA) to a writable folder") from None
    sources = _match_sources(parts, archives)
    done = []
    verified: set[Path] = set()
    for i, archive in enumerate(parts):
        target = root / archive.target
        if is_complete(target):
            logger.info(f"{name}: {target} already present ({_count_images(target)} images); nothing to do")
            done.append(target)
            continue
        if target.exists():
            n = _count_images(target) if target.is_dir() else -1
            if n == archive.count:  # e.g. extracted by hand: complete, so adopt it
                atomic_write_text(target / MARKER, json.dumps({"adopted": True, "images": n}) + "\n")
                logger.info(f"{name}: {target} already holds all {n} images; marked complete")
                done.append(target)
                continue
            raise DownloadError(f"{target} exists but is incomplete ({max(n, 0)} of {archive.count} images) and "
                                "was not installed by srgan download: delete it and run the command again")
        src = sources.get(archive.filename)
        if src is not None and urllib.parse.urlparse(src).scheme not in ("http", "https", "ftp", "file"):
            path = Path(src).expanduser()
            owned = False  # the user's file: never renamed or deleted
        else:
            url = src or (mirror.rstrip("/") + "/" + archive.filename if mirror else archive.url)
            path = root / "downloads" / archive.filename
            if not path.exists():
                _check_space(path.parent, archive, root)
                logger.info(f"{name}: downloading {url}")
                part = path.with_name(path.name + ".part")
                fetch(url, part, archive.size, retries, progress, backoff=backoff)
                os.replace(part, path)
            owned = True
        if path not in verified:  # one archive may install several folders (BSDS300): checked once
            if not owned:
                logger.info(f"{name}: verifying {path}")
            verify(path, archive, progress, move_bad=owned)
            verified.add(path)
        logger.info(f"{name}: extracting {path.name} into {target}")
        _install(archive, path, root, progress)
        if owned and not keep_archive and all(a.filename != archive.filename for a in parts[i + 1:]):
            path.unlink()  # after the last folder it installs (BSDS300's archive installs two)
        logger.info(f"{name}: {target} ready ({archive.count} images)")
        done.append(target)
    return done


def _check_space(folder: Path, archive: Archive, root: Path) -> None:
    """Refuse to start a download that cannot fit (archive + its extracted images)."""
    if archive.size is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / (archive.filename + ".part")
    need = 2 * archive.size - (part.stat().st_size if part.exists() else 0)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise DownloadError(f"{root} has {free / 1e9:.1f} GB free, {archive.filename} needs about "
                            f"{need / 1e9:.1f} GB (archive + images): free space or pass --root elsewhere")
