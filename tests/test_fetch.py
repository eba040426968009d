"""Getting files: SHA-256 and archive extraction that never writes outside its folder.

The HTTP side (resume with Range, retries, a server that ignores Range) is exercised end to end by
``tests/test_download.py`` against a local server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile

import pytest

from srgan_lib import fetch
from srgan_lib.errors import DownloadError


def test_sha256sum_is_hashlibs(tmp_path):
    blob = bytes(range(256)) * 5000  # > one read chunk
    (tmp_path / "f").write_bytes(blob)
    assert fetch.sha256sum(tmp_path / "f") == hashlib.sha256(blob).hexdigest()


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)


def _file(name, data=b"ok"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_tar_members_outside_the_folder_and_links_are_left_out(tmp_path):
    link = tarfile.TarInfo("img/link.png")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    _tar(tmp_path / "a.tgz", [_file("img/1.png"), _file("../escaped.png"), _file("/abs.png"), (link, None)])
    fetch.safe_extract(tmp_path / "a.tgz", tmp_path / "out", progress=False)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")) == ["out/img/1.png"]
    assert not (tmp_path / "escaped.png").exists()


def test_zip_paths_are_kept_inside_the_folder(tmp_path):
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("DIV2K/0001.png", b"ok")
        zf.writestr("../../escaped.png", b"no")
    fetch.safe_extract(tmp_path / "a.zip", tmp_path / "out", progress=False)
    extracted = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert "out/DIV2K/0001.png" in extracted and all(p.startswith("out/") for p in extracted)


def test_a_file_that_is_no_archive_is_a_one_line_error(tmp_path):
    (tmp_path / "x.tgz").write_bytes(b"not an archive")
    with pytest.raises(DownloadError, match="neither a zip nor a tar archive"):
        fetch.safe_extract(tmp_path / "x.tgz", tmp_path / "out", progress=False)
