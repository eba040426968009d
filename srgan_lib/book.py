"""The notebooks rendered with their outputs as a static HTML site: ``make book`` / ``srgan book``.

The notebooks are executed by :mod:`reproduce` (in the ``quick`` profile unless
told otherwise) and each executed copy becomes one page, rendered by nbconvert's
HTML exporter, which builds offline: its styles are inlined and the figures are
embedded as data URIs, so a page is a single file. Each page opens with a banner
naming the profile and when it was executed and rendered; ``index.html`` holds
the README's table of notebooks, linked to the pages. A tqdm bar, a widget in a
kernel, is shown as the text of its last state, which needs no JavaScript.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
from pathlib import Path

from . import config, reproduce
from .errors import ConfigError
from .fileio import atomic_write_text, check_writable

logger = logging.getLogger(__name__)

DEFAULT_PROFILE = "quick"  # the book shows the CPU run anyone can repeat, also on a machine with CUDA
BOOK_DIR = config.PROJECT_ROOT / "docs" / "book"
README = config.PROJECT_ROOT / "README.md"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_TOC_ROW = re.compile(r"^\|\s*`notebooks/(\d\d_\w+)\.ipynb`\s*\|(.*)\|\s*$")


def contents(readme: Path | None = None) -> dict[str, str]:
    """The README's table of notebooks: ``{"01_bicubic_baseline": "what it teaches", ...}`` in its order."""
    text = (readme or README).read_text(encoding="utf-8")
    rows = (_TOC_ROW.match(line.strip()) for line in text.splitlines())
    return {m.group(1): m.group(2).strip() for m in rows if m}


def title(stem: str) -> str:
    """``01_bicubic_baseline`` -> ``01 bicubic baseline``."""
    return stem.replace("_", " ")


def _stamp(when: datetime.datetime) -> str:
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _banner(profile: config.Profile, executed: datetime.datetime, rendered: str, nav: list[str]) -> str:
    return (f"> {' · '.join(nav)}\n>\n"
            f"> Executed with `SRGAN_PROFILE={profile.name}` ({profile.description}) on {_stamp(executed)}; "
            f"rendered on {rendered} by `make book`. The outputs below come from that run; the notebooks in "
            "`notebooks/` are committed without outputs.")


def _bars_as_text(nb) -> None:
    """Replace each tqdm widget by a text output of its last state (or drop it if it was closed, hidden)."""
    from nbformat.v4 import new_output  # deferred: only the book needs nbformat

    saved = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    widgets = {key: entry.get("state", {}) for key, entry in saved.items()}
    others = False
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        outputs = []
        for out in cell.outputs:
            box = out.get("data", {}).get(WIDGET_VIEW, {}).get("model_id")
            text = reproduce.bar_text(widgets, box) if box else None
            if text is None:
                others = others or box is not None
                outputs.append(out)
                continue
            layout = widgets.get(str(widgets[box].get("layout")).removeprefix("IPY_MODEL_"), {})
            if layout.get("visibility") != "hidden":  # tqdm hides a bar closed with leave=False
                outputs.append(new_output("stream", name="stderr", text=text + "\n"))
        cell.outputs = outputs
    if not others:  # no widget left: the page needs no widget manager (which a browser would fetch)
        nb.metadata.pop("widgets", None)


def render(executed: list[Path], out: Path, profile: config.Profile, toc: dict[str, str] | None = None) -> Path:
    """Render executed notebooks into ``out`` (one page each, and ``index.html``); return the index.

    Args:
        executed: executed copies (with outputs), in reading order; a page is named after each.
        toc: ``{notebook stem: description}`` for the index (default: the README's table).
    """
    import nbformat  # deferred: nbconvert brings Jinja, Mistune and the exporters' templates
    from nbconvert import HTMLExporter

    toc = contents() if toc is None else toc
    check_writable(out)
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    rendered = _stamp(datetime.datetime.now(datetime.timezone.utc))
    pages = [p.stem + ".html" for p in executed]
    for stale in set(out.glob("[0-9][0-9]_*.html")) - {out / page for page in pages}:
        stale.unlink()  # a page of a notebook renamed or removed since the last build
    for i, path in enumerate(executed):
        nb = nbformat.read(path, as_version=4)
        nav = [f"**{title(path.stem)}** (notebook {i + 1} of {len(executed)})", "[contents](index.html)"]
        nav += [f"[← {title(executed[i - 1].stem)}]({pages[i - 1]})"] if i else []
        nav += [f"[{title(executed[i + 1].stem)} →]({pages[i + 1]})"] if i + 1 < len(executed) else []
        ran = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.timezone.utc)
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(_banner(profile, ran, rendered, nav)))
        _bars_as_text(nb)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {
            "name": f"{title(path.stem)} · srgan-upscaling", "path": str(reproduce.NOTEBOOK_DIR)}})
        atomic_write_text(out / pages[i], body)
    rows = "\n".join(f"| [{title(p.stem)}]({page}) | {toc.get(p.stem, '')} |" for p, page in zip(executed, pages))
    ran = max(datetime.datetime.fromtimestamp(p.stat().st_mtime, datetime.timezone.utc) for p in executed)
    index = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "# srgan-upscaling: the notebooks, rendered\n\n"
        f"Each page is one notebook of the tutorial, executed with `SRGAN_PROFILE={profile.name}` "
        f"({profile.description}) on {_stamp(ran)} and rendered on {rendered} by `make book`, with its "
        "outputs and figures. To run them yourself: `make lab`.\n\n"
        f"| notebook | what it teaches |\n| --- | --- |\n{rows}\n")])
    body, _ = exporter.from_notebook_node(index, resources={"metadata": {"name": "srgan-upscaling: the notebooks"}})
    index_path = atomic_write_text(out / "index.html", body)
    logger.info(f"book: {len(pages)} pages and index.html in {out}")
    return index_path


def build(profile_name: str | None = None, out: Path | None = None, reuse: bool = False) -> Path:
    """Execute the notebooks (``reproduce``) and render them; return the path of ``index.html``.

    Args:
        profile_name: default ``$SRGAN_PROFILE``, else ``quick`` (not the paper profile a CUDA machine would pick).
        out: the site's folder (default ``docs/book``).
        reuse: render the executed copies ``srgan reproduce`` left for this profile instead of running again.
    """
    profile = config.get_profile(profile_name or os.environ.get("SRGAN_PROFILE") or DEFAULT_PROFILE)
    if not reuse:
        reproduce.reproduce(profile.name)
    folder = config.results_dir(profile.name) / "notebooks"
    executed = [folder / p.name for p in reproduce.notebook_paths()]
    missing = [p.name for p in executed if not p.is_file()]
    if missing:
        raise ConfigError(f"no executed copy of {', '.join(missing)} in {folder}: run `srgan reproduce --profile "
                          f"{profile.name}` first, or build without --reuse")
    return render(executed, Path(out) if out else BOOK_DIR, profile)
