"""The rendered book: a page per notebook, an index linking to each, every figure present, the profile named."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from PIL import Image

from srgan_lib import book, cli, config, reproduce
from srgan_lib.errors import ConfigError


class _Refs(HTMLParser):
    """The ``src`` of every element and the ``href`` of every link in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.src: list[str] = []
        self.href: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        if attrs.get("src"):
            self.src.append(attrs["src"])
        if tag == "a" and attrs.get("href"):
            self.href.append(attrs["href"])


def _refs(page: Path) -> _Refs:
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def check_site(out: Path, stems: list[str], profile: str) -> None:
    """What every build must give: the checks of this file, shared by the tiny and the real build."""
    pages = [out / f"{stem}.html" for stem in stems]
    assert sorted(out.glob("*.html")) == sorted(pages + [out / "index.html"])
    index = _refs(out / "index.html")
    assert [h for h in index.href if not h.startswith("#")] == [p.name for p in pages]
    for page in pages + [out / "index.html"]:
        text = page.read_text(encoding="utf-8")
        refs = _refs(page)
        for src in refs.src:  # a figure is embedded, or a file beside the page; scripts may come from a CDN
            if not src.startswith(("data:", "https://")):
                assert (out / src).is_file(), f"{page.name} refers to {src}, which is not in {out}"
        assert all(src.startswith("data:image/") for src in re.findall(r'<img[^>]*\ssrc="([^"]+)"', text))
        for href in refs.href:  # every link inside the site leads to a page of it
            if not href.startswith(("#", "https://", "http://", "mailto:")):
                assert (out / href.split("#")[0]).is_file(), f"{page.name} links to {href}, which is missing"
        assert f"SRGAN_PROFILE={profile}" in text, f"{page.name} does not name the profile"
        assert re.search(r"rendered on \d{4}-\d\d-\d\d \d\d:\d\d UTC", text), f"{page.name} has no date"


def _png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """Two tiny numbered notebooks (a figure, a markdown image, a tqdm bar), their README table, the results."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "pixel.png").write_bytes(_png("red"))
    figure = base64.b64encode(_png("blue")).decode()
    cells = {
        "01_first": [nbformat.v4.new_markdown_cell("# First\n\n![a red pixel](pixel.png)\n\n$a^2 + b^2$"),
                     nbformat.v4.new_code_cell("import base64\nfrom IPython.display import Image, display\n"
                                               f"display(Image(data=base64.b64decode('{figure}')))")],
        "02_second": [nbformat.v4.new_code_cell("from tqdm.auto import tqdm\nfor _ in tqdm(range(4), desc='steps'):"
                                                "\n    pass")],
    }
    for stem, nb_cells in cells.items():
        nb = nbformat.v4.new_notebook(cells=nb_cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, folder / f"{stem}.ipynb")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n| notebook | what it teaches |\n| --- | --- |\n"
                      "| `notebooks/01_first.ipynb` | the *first* lesson |\n"
                      "| `notebooks/02_second.ipynb` | the second lesson |\n\n| other | table |\n", encoding="utf-8")
    monkeypatch.setattr(reproduce, "NOTEBOOK_DIR", folder)
    monkeypatch.setattr(book, "README", readme)
    monkeypatch.setattr(config, "results_dir", lambda profile: tmp_path / "results" / profile)
    return tmp_path


def test_the_readme_table_lists_the_notebooks_in_order():
    assert list(book.contents()) == [p.stem for p in reproduce.notebook_paths()]
    assert all(book.contents().values())


def test_a_build_runs_the_notebooks_and_renders_a_page_each_with_an_index(tiny):
    out = tiny / "site"
    assert book.build("smoke", out) == out / "index.html"
    check_site(out, ["01_first", "02_second"], "smoke")
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "the <em>first</em> lesson" in index  # the README's descriptions, Markdown rendered
    first = (out / "01_first.html").read_text(encoding="utf-8")
    assert len(re.findall(r'<img[^>]*src="data:image/png;base64,', first)) == 2  # the figure and the markdown image
    assert 'href="02_second.html"' in first and 'href="01_first.html"' in (out / "02_second.html").read_text()
    second = (out / "02_second.html").read_text(encoding="utf-8")
    assert re.search(r"steps: +100%\| 4/4 \[", second)  # the tqdm widget as the text of its last state
    assert "widget-view+json" not in second and "unpkg.com" not in second  # so no widget manager to fetch
    assert not nbformat.read(tiny / "notebooks" / "02_second.ipynb", as_version=4).cells[0].outputs


def test_reuse_renders_what_reproduce_left_and_removes_stale_pages(tiny, capsys):
    reproduce.reproduce("smoke")
    out = tiny / "site"
    out.mkdir()
    (out / "07_removed.html").write_text("an old page")
    assert cli.main(["book", "--profile", "smoke", "--out", str(out), "--reuse"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    check_site(out, ["01_first", "02_second"], "smoke")


def test_reuse_without_executed_notebooks_names_the_command_to_run(tiny, capsys):
    with pytest.raises(ConfigError, match="srgan reproduce --profile smoke"):
        book.build("smoke", tiny / "site", reuse=True)
    assert cli.main(["book", "--profile", "smoke", "--reuse"]) == 2
    assert "01_first.ipynb" in capsys.readouterr().err


@pytest.mark.slow
def test_the_real_notebooks_build_in_the_smoke_profile(tmp_path, monkeypatch):
    """The five notebooks executed and rendered (~50 s on 2 CPU cores)."""
    monkeypatch.setattr(config, "results_dir", lambda profile: tmp_path / "results" / profile)
    book.build("smoke", tmp_path / "site")
    check_site(tmp_path / "site", [p.stem for p in reproduce.notebook_paths()], "smoke")
