"""Getting files: resumable HTTP download, SHA-256, safe archive extraction.

The mechanics under :mod:`srgan_lib.download`, kept apart from the dataset
registry. ``urllib`` and ``tqdm`` do the transfer and the progress bar; what
they lack is added here: resuming a ``.part`` file with an HTTP ``Range``
request (restarting cleanly when a server ignores it), retrying a dropped
connection, and extracting archives without letting a member escape the
destination folder. (torchvision's ``download_url`` neither resumes nor checks
SHA-256, and its ``extract_archive`` gives tar files no member filter, so they
do not fit here.)
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import socket
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from .errors import DownloadError

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


def sha256sum(path: Path, progress: bool = False) -> str:
    """SHA-256 of a file, in hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024,
                                     desc=f"checking {path.name}", disable=not progress, leave=False) as bar:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


def fetch(url: str, part: Path, size: int | None = None, retries: int = 5, progress: bool = True,
          timeout: float = 60.0, backoff: float = 2.0,
          hint: str = "fetch the file by other means and pass --archive PATH") -> None:
    """Download ``url`` into ``part``, resuming from the bytes ``part`` already holds.

    A dropped connection is retried up to ``retries`` times, each time resuming
    with an HTTP ``Range`` request. On failure ``part`` is kept for the next run.
    ``hint`` ends each error message: what the user can do instead.

    Raises:
        DownloadError: the server refused, or every attempt failed.
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        if size is not None and offset > size:  # not a prefix of this file: start over
            part.unlink()
            offset = 0
        if size is not None and offset == size:
            return
        headers = {"User-Agent": "srgan-upscaling"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
                status = getattr(resp, "status", None) or 200
                start = offset if status == 206 and _range_start(resp) == offset else 0
                length = resp.headers.get("Content-Length")
                total = start + int(length) if length is not None else size
                with open(part, "ab" if start else "wb") as f, tqdm(
                        total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                        desc=part.name.removesuffix(".part"), disable=not progress) as bar:
                    # read1 returns what has arrived, so bytes before a dropped connection are kept.
                    read = getattr(resp, "read1", resp.read)
                    while chunk := read(_CHUNK):
                        f.write(chunk)
                        bar.update(len(chunk))
                got = part.stat().st_size
                if total is not None and got < total:
                    raise http.client.IncompleteRead(b"", total - got)
            return
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset and size is None:
                return  # nothing left past our offset: the part file is whole
            if exc.code < 500 and exc.code not in (408, 416, 429):
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}: check the address, or {hint}") from None
            if exc.code == 416:
                part.unlink(missing_ok=True)
            error = f"HTTP {exc.code} {exc.reason}"
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, socket.gaierror):  # no such host / no network: retrying will not help
                raise DownloadError(f"{url}: cannot resolve the host ({exc.reason}); check the network, "
                                    f"or {hint}") from None
            error = f"{type(exc).__name__}: {exc.reason}"
        except (OSError, http.client.HTTPException) as exc:  # resets, timeouts, short reads
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        attempt += 1
        have = part.stat().st_size if part.exists() else 0
        if attempt > retries:
            raise DownloadError(
                f"{url}: download failed after {attempt} attempt(s) ({error}); {part} keeps the {have:,} bytes "
                f"fetched so far: run the command again to resume, or {hint}")
        logger.info(f"connection lost ({error}); resuming at byte {have:,} (retry {attempt} of {retries})")
        time.sleep(backoff * attempt)


def _range_start(resp) -> int | None:
    """First byte of a 206 response (``Content-Range: bytes START-END/TOTAL``)."""
    value = resp.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def safe_extract(archive: Path, dest: Path, progress: bool) -> None:
    """Extract a zip or tar archive into ``dest``, refusing members that escape it."""
    dest.mkdir(parents=True)
    root = dest.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:  # zipfile already strips '..' and absolute paths
            for member in tqdm(zf.infolist(), desc=f"extracting {archive.name}", unit="file",
                               disable=not progress, leave=False):
                zf.extract(member, dest)
        return
    try:
        tf = tarfile.open(archive)
    except tarfile.TarError:
        raise DownloadError(f"{archive}: neither a zip nor a tar archive") from None
    with tf:
        for member in tqdm(tf, desc=f"extracting {archive.name}", unit="file", disable=not progress, leave=False):
            target = (dest / member.name).resolve()
            if not (member.isfile() or member.isdir()) or not target.is_relative_to(root):
                continue  # links and paths outside dest have no place in an image archive
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: the safe filter, no warning
                tf.extract(member, dest, set_attrs=False, filter="data")
            else:  # pragma: no cover
                tf.extract(member, dest, set_attrs=False)
