"""Atomic file writes: a temporary file in the destination folder, then ``os.replace``.

Every file the package writes (images, checkpoints, caches, tables, logs) goes
through here, so that a kill at any instant leaves either the old file or the
new one, never half of one. ``tempfile.mkstemp`` creates its files with mode
0600; :func:`temp_path` gives them the permissions an ordinary ``open()``
would (0666 less the umask), so results stay readable by the user's group as usual.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import ConfigError


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_MODE = _default_mode()


def temp_path(folder: str | os.PathLike, prefix: str, suffix: str = "") -> str:
    """A new, empty, hidden temporary file in ``folder`` (same file system as the destination)."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=suffix)
    os.close(fd)
    os.chmod(tmp, _MODE)
    return tmp


def atomic_write(path: str | os.PathLike, write: Callable[[str], object], suffix: str = ".tmp") -> Path:
    """Call ``write(tmp_path)`` and rename the temporary file onto ``path``.

    Args:
        path: the destination (its folder is created).
        write: writes the content to the path it is given.
        suffix: of the temporary file (some writers pick the format from it, e.g. ``.png``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path.parent, f".{path.name}.", suffix)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a UTF-8 text file atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def check_writable(folder: Path) -> Path:
    """Create ``folder`` if needed and make sure files can be written into it.

    Raises:
        ConfigError: naming the folder when it cannot be created or written.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write to output folder {folder} ({exc.strerror or exc}); "
                          "choose another folder") from None
    return folder
