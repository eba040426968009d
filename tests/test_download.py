"""srgan_lib.download against a real HTTP server on 127.0.0.1 (``conftest.FileServer``; no test touches the internet).

The server supports Range requests; variants drop the connection part-way
through a file or ignore Range. The archives are small zips/tgzs made here,
and the registry's recorded checksums are replaced by theirs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from srgan_lib import cli, datasets, download
from srgan_lib.errors import DownloadError


def _png_bytes(seed: int, side: int = 48) -> bytes:
    rng = np.random.default_rng(seed)  # noise: PNG cannot compress it, so the archive has some size
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def div2k_zip():
    """A DIV2K_train_HR.zip look-alike: DIV2K_train_HR/000{1,2,3}.png; returns (bytes, {name: png})."""
    images = {f"000{i}.png": _png_bytes(i) for i in (1, 2, 3)}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in images.items():
            zf.writestr(f"DIV2K_train_HR/{name}", data)
    return buf.getvalue(), images


def _div2k_archive(server, data, **changes):
    """The real DIV2K train entry with the test archive's address, size and checksum."""
    real = datasets.DATASETS["div2k"].archives[0]
    fields = dict(url=server.url("DIV2K_train_HR.zip"), sha256=hashlib.sha256(data).hexdigest(),
                  size=len(data), count=3)
    fields.update(changes)
    return dataclasses.replace(real, **fields)


def _only_archive(monkeypatch, name, archive):
    """Make the registry's ``name`` download just ``archive``."""
    monkeypatch.setitem(datasets.DATASETS, name, dataclasses.replace(datasets.DATASETS[name], archives=(archive,)))


def _quiet(**kw):
    return dict(progress=False, backoff=0.0, **kw)


def _assert_installed(folder, images):
    assert download.is_complete(folder)
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(images)
    for name, data in images.items():
        assert (folder / name).read_bytes() == data


def test_download_resumes_after_dropped_connection(tmp_path, serve, div2k_zip):
    data, images = div2k_zip
    server = serve({"DIV2K_train_HR.zip": data}, drops=1, drop_after=10_000)
    [target] = download.download((_div2k_archive(server, data),), root=tmp_path, retries=2, **_quiet())
    assert target == tmp_path / "DIV2K" / "DIV2K_train_HR"
    _assert_installed(target, images)
    # The second request asked only for the bytes the first one did not deliver.
    assert [r for _, r in server.requests] == [None, "bytes=10000-"]
    assert not (tmp_path / "downloads" / "DIV2K_train_HR.zip").exists()  # archive removed after extraction
    assert not list((tmp_path / "downloads").glob("*.part"))


def test_interrupted_run_keeps_part_and_next_run_resumes(tmp_path, serve, div2k_zip):
    data, images = div2k_zip
    server = serve({"DIV2K_train_HR.zip": data}, drops=1, drop_after=7_000)
    archive = _div2k_archive(server, data)
    with pytest.raises(DownloadError, match=r"failed after 1 attempt.*keeps the 7,000 bytes.*run the command again"):
        download.download((archive,), root=tmp_path, retries=0, **_quiet())
    part = tmp_path / "downloads" / "DIV2K_train_HR.zip.part"
    assert part.stat().st_size == 7_000
    assert not (tmp_path / "DIV2K" / "DIV2K_train_HR").exists()
    download.download((archive,), root=tmp_path, retries=0, **_quiet())
    assert server.requests[-1][1] == "bytes=7000-"
    _assert_installed(tmp_path / "DIV2K" / "DIV2K_train_HR", images)


def test_server_ignoring_range_restarts_cleanly(tmp_path, serve, div2k_zip):
    data, images = div2k_zip
    server = serve({"DIV2K_train_HR.zip": data}, drops=1, drop_after=5_000, ignore_range=True)
    download.download((_div2k_archive(server, data),), root=tmp_path, retries=1, **_quiet())
    assert server.requests[1][1] == "bytes=5000-"  # asked to resume, got the whole file: not appended
    _assert_installed(tmp_path / "DIV2K" / "DIV2K_train_HR", images)


def test_checksum_mismatch_moves_file_aside_and_never_uses_it(tmp_path, serve, div2k_zip):
    data, images = div2k_zip
    server = serve({"DIV2K_train_HR.zip": data})
    wrong = _div2k_archive(server, data, sha256="0" * 64)
    with pytest.raises(DownloadError, match=r"moved aside to DIV2K_train_HR\.zip\.bad.*has SHA-256 "
                       + hashlib.sha256(data).hexdigest() + ", expected 0{64}"):
        download.download((wrong,), root=tmp_path, **_quiet())
    downloads = tmp_path / "downloads"
    assert (downloads / "DIV2K_train_HR.zip.bad").read_bytes() == data
    assert not (downloads / "DIV2K_train_HR.zip").exists()
    assert not (tmp_path / "DIV2K" / "DIV2K_train_HR").exists()
    # A run with the right checksum downloads afresh rather than picking up the .bad file.
    download.download((_div2k_archive(server, data),), root=tmp_path, **_quiet())
    assert len(server.requests) == 2
    _assert_installed(tmp_path / "DIV2K" / "DIV2K_train_HR", images)


def test_size_mismatch_is_reported_before_hashing(tmp_path, serve, div2k_zip):
    data, _ = div2k_zip
    server = serve({"DIV2K_train_HR.zip": data[:-10]})  # the server's file is short
    with pytest.raises(DownloadError, match=rf"has {len(data) - 10:,} bytes, expected {len(data):,}"):
        download.download((_div2k_archive(server, data),), root=tmp_path, **_quiet())
    assert (tmp_path / "downloads" / "DIV2K_train_HR.zip.bad").exists()


def test_second_run_does_nothing_and_says_so(tmp_path, serve, div2k_zip, caplog):
    data, images = div2k_zip
    server = serve({"DIV2K_train_HR.zip": data})
    archive = _div2k_archive(server, data)
    download.download((archive,), root=tmp_path, **_quiet())
    with caplog.at_level("INFO", logger="srgan_lib.download"):
        caplog.clear()
        download.download((archive,), root=tmp_path, progress=False)
    messages = [r.getMessage() for r in caplog.records if r.name == "srgan_lib.download"]
    assert len(server.requests) == 1
    target = tmp_path / "DIV2K" / "DIV2K_train_HR"
    assert messages == [f"dataset: {target} already present (3 images); nothing to do"]


def test_extraction_is_atomic_when_interrupted(tmp_path, serve, div2k_zip):
    data, images = div2k_zip
    server = serve({"DIV2K_train_HR.zip": data})

    def install_then_die(raw, staging, name):  # the real installer, killed part-way
        datasets.install_folder(raw, staging, name)
        raise KeyboardInterrupt

    archive = _div2k_archive(server, data, install=install_then_die)
    with pytest.raises(KeyboardInterrupt):
        download.download((archive,), root=tmp_path, keep_archive=True, **_quiet())
    parent = tmp_path / "DIV2K"
    assert not (parent / "DIV2K_train_HR").exists()  # never the final name while incomplete
    assert list(parent.iterdir()) == []  # the temporary folder is gone too
    # A leftover from a run killed with SIGKILL (no cleanup) is not mistaken for the dataset either.
    stale = parent / ".DIV2K_train_HR.extract-dead"
    (stale / "DIV2K_train_HR").mkdir(parents=True)
    (stale / "DIV2K_train_HR" / "0001.png").write_bytes(images["0001.png"])
    download.download((_div2k_archive(server, data),), root=tmp_path, **_quiet())
    assert len(server.requests) == 1  # the kept, verified archive was reused
    assert not stale.exists()
    _assert_installed(parent / "DIV2K_train_HR", images)


def test_unexpected_archive_content_is_an_error(tmp_path, serve, div2k_zip):
    data, _ = div2k_zip
    server = serve({"DIV2K_train_HR.zip": data})
    with pytest.raises(DownloadError, match=r"yields 3 images for DIV2K/DIV2K_train_HR, expected 800"):
        download.download((_div2k_archive(server, data, count=800),), root=tmp_path, **_quiet())
    assert list((tmp_path / "DIV2K").iterdir()) == []


def test_existing_folder_without_marker(tmp_path, serve, div2k_zip):
    data, images = div2k_zip
    server = serve({"DIV2K_train_HR.zip": data})
    target = tmp_path / "DIV2K" / "DIV2K_train_HR"
    target.mkdir(parents=True)
    (target / "0001.png").write_bytes(images["0001.png"])
    with pytest.raises(DownloadError, match=r"exists but is incomplete \(1 of 3 images\).*delete it"):
        download.download((_div2k_archive(server, data),), root=tmp_path, **_quiet())
    for name, png in images.items():  # a complete folder extracted by hand is adopted, not fetched
        (target / name).write_bytes(png)
    download.download((_div2k_archive(server, data),), root=tmp_path, **_quiet())
    assert server.requests == []
    _assert_installed(target, images)


@pytest.mark.parametrize("name", ["bsds100", "bsds200"])
def test_bsds300_installs_both_splits_from_one_fetch(tmp_path, serve, bsds_tgz, monkeypatch, name):
    data, members = bsds_tgz
    server = serve({"BSDS300-images.tgz": data})
    counts = {"BSDS100": 3, "BSDS200": 2}
    entries = tuple(dataclasses.replace(a, url=server.url("BSDS300-images.tgz"), sha256=hashlib.sha256(data).hexdigest(),
                                        count=counts[a.target]) for a in datasets.DATASETS[name].archives)
    monkeypatch.setitem(datasets.DATASETS, name, dataclasses.replace(datasets.DATASETS[name], archives=entries))
    done = download.download(name, root=tmp_path, **_quiet())
    assert done[0] == tmp_path / datasets.DATASETS[name].folder  # its own split first
    assert sorted(done) == [tmp_path / "BSDS100", tmp_path / "BSDS200"]
    assert len(server.requests) == 1  # one archive, fetched once, kept until its last folder was installed
    assert not (tmp_path / "downloads" / "BSDS300-images.tgz").exists()  # then deleted
    _assert_installed(tmp_path / "BSDS100", {f"{i}.jpg": members[f"BSDS300/images/test/{i}.jpg"]
                                             for i in (3096, 8023, 12084)})  # the unlisted 99999 left out
    _assert_installed(tmp_path / "BSDS200", {f"{i}.jpg": members[f"BSDS300/images/train/{i}.jpg"] for i in (2092, 8049)})
    assert download.download(name, root=tmp_path, **_quiet()) == done and len(server.requests) == 1


def test_archive_fetched_by_other_means(tmp_path, serve, div2k_zip):
    data, images = div2k_zip
    server = serve({})  # the official address is down: every request would 404
    archive = _div2k_archive(server, data)
    good = tmp_path / "elsewhere" / "my_copy.zip"  # any name: matched by checksum
    good.parent.mkdir()
    good.write_bytes(data)
    bad = tmp_path / "elsewhere" / "DIV2K_train_HR.zip"
    bad.write_bytes(data[:-1] + b"x")
    with pytest.raises(DownloadError, match=r"elsewhere/DIV2K_train_HR\.zip has SHA-256"):
        download.download((archive,), root=tmp_path / "data", archives=[str(bad)], **_quiet())
    assert bad.exists() and not bad.with_name(bad.name + ".bad").exists()  # a user's file is never renamed
    download.download((archive,), root=tmp_path / "data", archives=[str(good)], **_quiet())
    assert good.read_bytes() == data  # nor deleted
    assert server.requests == []
    _assert_installed(tmp_path / "data" / "DIV2K" / "DIV2K_train_HR", images)


def test_other_address_and_mirror(tmp_path, serve, div2k_zip):
    data, images = div2k_zip
    official = serve({})
    mirror = serve({"pub/DIV2K_train_HR.zip": data, "x/DIV2K_train_HR.zip": data})
    archive = _div2k_archive(official, data)
    download.download((archive,), root=tmp_path / "a", archives=[mirror.url("x/DIV2K_train_HR.zip")], **_quiet())
    download.download((archive,), root=tmp_path / "b", mirror=mirror.url("pub/"), **_quiet())
    assert [p for p, _ in mirror.requests] == ["/x/DIV2K_train_HR.zip", "/pub/DIV2K_train_HR.zip"]
    assert official.requests == []
    _assert_installed(tmp_path / "b" / "DIV2K" / "DIV2K_train_HR", images)


def test_cli_download_and_one_line_errors(tmp_path, serve, bsds_tgz, monkeypatch, capsys):
    data, _ = bsds_tgz
    server = serve({"m/BSDS300-images.tgz": data})
    real = datasets.DATASETS["bsds100"].archives[0]
    entry = dataclasses.replace(real, url=server.url("nowhere/BSDS300-images.tgz"),
                                sha256=hashlib.sha256(data).hexdigest(), count=3)
    _only_archive(monkeypatch, "bsds100", entry)
    root = str(tmp_path / "data")

    def error_line():
        """The one error line (progress bars also write to stderr); no traceback."""
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if "error" in ln.lower()]
        assert "Traceback" not in err and len(lines) == 1 and err.rstrip().endswith(lines[0])
        return lines[0]

    assert cli.main(["download", "bsds100", "--root", root, "--retries", "0"]) == 2
    line = error_line()
    assert line.startswith("srgan download: error: http://127.0.0.1:") and "HTTP 404 Not Found" in line

    _only_archive(monkeypatch, "bsds100", dataclasses.replace(entry, sha256="f" * 64))
    assert cli.main(["download", "bsds100", "--root", root, "--url", server.url("m")]) == 2
    line = error_line()
    assert "expected ffff" in line and "BSDS300-images.tgz.bad" in line

    _only_archive(monkeypatch, "bsds100", entry)
    assert cli.main(["download", "bsds100", "--root", root, "--url", server.url("m")]) == 0
    assert cli.main(["download", "bsds100", "--root", root]) == 0
    said = capsys.readouterr().err  # progress is logged on stderr (srgan_lib.log)
    assert "BSDS100 ready (3 images)" in said and said.rstrip().endswith("already present (3 images); nothing to do")

    assert cli.main(["download", "bsds100", "--root", root + "2", "--archive", str(tmp_path / "missing.tgz")]) == 2
    assert error_line() == f"srgan download: error: --archive {tmp_path / 'missing.tgz'}: no such file"


def test_only_registry_datasets_with_archives_are_downloaded(tmp_path):
    with pytest.raises(DownloadError, match=r"^set5 needs no download \(Set5: .*\): use it by name; "
                                            r"`srgan download` fetches div2k, bsds100, bsds200"):
        download.download("set5", root=tmp_path)
    with pytest.raises(DownloadError, match=r"^samples needs no download"):
        download.download("samples", root=tmp_path)
    with pytest.raises(DownloadError, match=r"^unknown dataset 'div2K': use one of div2k, bsds100, bsds200$"):
        download.download("div2K", root=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing was created for them
