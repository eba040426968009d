"""The repository stands alone: its tracked benchmark images are intact and nothing points outside it."""

from __future__ import annotations

import hashlib
import re
import subprocess

import pytest
from conftest import BENCHMARK_DATA, PROJECT_ROOT

#: ``| `path` | `sha256` |`` rows of data/README.md
_SUM_ROW = re.compile(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|$", re.MULTILINE)


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=False)
    if out.returncode != 0:  # e.g. an exported tarball without .git: nothing to check against
        pytest.fail(f"`git ls-files` failed in {PROJECT_ROOT}: run the tests from a git clone")
    return [f for f in out.stdout.decode().split("\0") if f]


def test_every_tracked_image_has_its_recorded_sha256():
    listed = dict(_SUM_ROW.findall((BENCHMARK_DATA / "README.md").read_text()))
    present = sorted(str(p.relative_to(BENCHMARK_DATA)) for sub in ("Set5", "Set14", "DIV2K_samples")
                     for p in (BENCHMARK_DATA / sub).rglob("*.png"))
    assert len(present) == 21 and sorted(listed) == present  # Set5 5 + Set14 14 + DIV2K 2
    for name in present:
        digest = hashlib.sha256((BENCHMARK_DATA / name).read_bytes()).hexdigest()
        assert digest == listed[name], f"data/{name}: SHA-256 {digest} differs from data/README.md"


def test_the_images_are_tracked_not_ignored():
    tracked = set(_tracked_files())
    untracked = [str(p.relative_to(PROJECT_ROOT)) for p in BENCHMARK_DATA.rglob("*.png")
                 if str(p.relative_to(PROJECT_ROOT)) not in tracked
                 and p.relative_to(BENCHMARK_DATA).parts[0] in ("Set5", "Set14", "DIV2K_samples")]
    assert not untracked, f"git add these (a clone would lack them): {untracked}"


#: The folder beside the repository that a clone from the web does not have. Its name is assembled here,
#: so that this file, which must name it to look for it, does not itself mention it.
_BESIDE = "s" + "hared"
#: A mention of that folder, or code that builds a path to it.
_OUTSIDE = re.compile(rf"\.\./{_BESIDE}|parents?\b[^\n]{{0,40}}[\"']{_BESIDE}[\"']|/ *[\"']{_BESIDE}[\"']")


def test_no_tracked_file_refers_to_a_folder_beside_the_repository():
    hits = []
    for name in _tracked_files():
        path = PROJECT_ROOT / name
        if path.suffix in (".png", ".jpg") or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if _OUTSIDE.search(line):
                hits.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not hits, "the repository must stand alone:\n" + "\n".join(hits)


@pytest.mark.parametrize("line, bad", [
    (f"see ../{_BESIDE}/STYLE.md", True),
    (f'SRC = ROOT.parent / "{_BESIDE}" / "data"', True),
    (f"x = Path(__file__).parents[2] / '{_BESIDE}'", True),
    (f"{_BESIDE} memory between workers", False),
    (f"tensors {_BESIDE} between processes", False),
])
def test_the_pattern_finds_what_it_should(line, bad):
    assert bool(_OUTSIDE.search(line)) is bad
