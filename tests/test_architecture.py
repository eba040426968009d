"""The package's shape, as docs/architecture.md draws it: imports run one way, modules stay small.

The module list below is the order of that page. Every ``from . import x`` /
``from .x import y`` in a module must name a module earlier in the list, which
also rules out cycles; a function-local import of a package module is not
allowed at all (a heavy third-party library may be imported inside a function,
with a comment saying why).
"""

from __future__ import annotations

import ast

import pytest
from conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "srgan_lib"

#: docs/architecture.md, "Modules, lowest first".
ORDER = (
    "errors", "log", "fileio", "overrides", "config", "grid",
    "images", "resize", "samples",
    "datasets", "fetch", "download", "cache", "data", "batches",
    "spectra", "metrics", "protocols", "evaluate", "stats", "paper", "tables", "paper_check",
    "models", "vgg", "losses",
    "distributed", "trainer", "checkpoint", "runlog", "upscale", "video", "train", "scoring",
    "ablation", "tv_study", "viz", "spectra_plots", "reproduce", "book",
    "cli",
)
MAX_LINES = 300


def _modules() -> list[str]:
    return sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def _package_imports(tree: ast.Module) -> list[tuple[str, int, bool]]:
    """(imported package module, line, at module level?) for every relative import."""
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [a.name for a in node.names]
            found += [(name.split(".")[0], node.lineno, id(node) in top) for name in names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("srgan_lib"):
            found.append((node.module.split(".")[1] if "." in node.module else node.names[0].name,
                          node.lineno, id(node) in top))
    return found


def test_every_module_is_placed_in_the_order():
    assert sorted(ORDER) == _modules(), "add the module to ORDER and to docs/architecture.md"


@pytest.mark.parametrize("module", _modules())
def test_imports_run_one_way_and_at_the_top(module):
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    rank = {name: i for i, name in enumerate(ORDER)}
    for target, line, at_top in _package_imports(tree):
        assert at_top, f"srgan_lib/{module}.py:{line}: import .{target} inside a function: move it to the top"
        assert rank[target] < rank[module], (
            f"srgan_lib/{module}.py:{line} imports .{target}, which comes after it in docs/architecture.md")


@pytest.mark.parametrize("module", _modules())
def test_no_module_passes_300_lines(module):
    lines = len((PACKAGE / f"{module}.py").read_text().splitlines())
    assert lines <= MAX_LINES, f"srgan_lib/{module}.py has {lines} lines: split it by concern"


def test_the_checks_can_fail(tmp_path):
    """A function-local and an upward import are both found."""
    tree = ast.parse("from . import errors\n\ndef f():\n    from .cli import main\n")
    assert _package_imports(tree) == [("errors", 1, True), ("cli", 4, False)]
