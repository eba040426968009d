"""Static checks of the committed notebooks (nbval executes them separately in `make test`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def _cells(path: Path, kind: str) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == kind]


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebook in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_name_is_numbered_snake_case(path):
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_reads_the_profile(path):
    first = _cells(path, "code")[0]
    assert "get_profile(" in first, f"{path.name}: the first code cell must call config.get_profile()"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_ends_with_summary_and_exercises(path):
    headings = [line.strip().lower() for md in _cells(path, "markdown") for line in md.splitlines()
                if line.startswith("#")]
    assert any("summary" in h for h in headings), f"{path.name}: no Summary section"
    assert any("exercises" in h for h in headings), f"{path.name}: no Exercises section"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_imports_come_from_the_package_not_star(path):
    code = "\n".join(_cells(path, "code"))
    assert "import *" not in code, f"{path.name}: use explicit imports"


#: A device named in a notebook's code instead of the profile's (``cfg.device`` via ``distributed.resolve_device``).
_HARD_DEVICE = re.compile(r"""(["'])(cpu|cuda(:\d+)?)\1|cuda\.is_available\(""")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_profile_chooses_the_device(path):
    hits = [line.strip() for cell in _cells(path, "code") for line in cell.splitlines() if _HARD_DEVICE.search(line)]
    assert not hits, f"{path.name}: use the profile's device (distributed.resolve_device(cfg.device)): {hits}"


def test_the_device_pattern_finds_hard_coded_devices():
    for line in ("trainer.Trainer(cfg, 'cpu')", 'x.to("cuda:0")', "DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'"):
        assert _HARD_DEVICE.search(line), line
    assert not _HARD_DEVICE.search("device = distributed.resolve_device(cfg.device)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_issue_numbers_in_what_students_read(path):
    text = "\n".join(_cells(path, "markdown") + _cells(path, "code"))
    hits = re.findall(r"\b[Ii]ssues? #?\d+", text)
    assert not hits, f"{path.name}: name the measurement or the document instead of {hits}"
