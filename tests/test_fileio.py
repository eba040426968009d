"""Atomic writes: a failure leaves the old file (or none) and no temporary file; normal permissions."""

from __future__ import annotations

import os
import stat

import pytest

from srgan_lib import fileio
from srgan_lib.errors import ConfigError


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = fileio.atomic_write_text(tmp_path / "table.md", "old\n")

    def crash(tmp):
        with open(tmp, "w") as f:
            f.write("half of the new")
        raise KeyboardInterrupt  # a kill mid-write

    with pytest.raises(KeyboardInterrupt):
        fileio.atomic_write(target, crash)
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["table.md"]


def test_new_files_get_the_permissions_open_would_give(tmp_path):
    path = fileio.atomic_write_text(tmp_path / "x.txt", "x")
    with open(tmp_path / "plain.txt", "w") as f:  # what an ordinary open() gives under this umask
        f.write("x")
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)  # not 0600


def test_check_writable_creates_the_folder_or_names_it(tmp_path):
    assert fileio.check_writable(tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=f"cannot write to output folder {tmp_path / 'file' / 'sub'}"):
        fileio.check_writable(tmp_path / "file" / "sub")
