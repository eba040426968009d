"""The notebooks in JupyterLab, in a real browser: what nbval cannot see.

Each numbered notebook is opened in headless Chromium and run through the UI (menu Run > Run All Cells);
then no cell may show an error, every image output must have rendered, and in the notebook that shows
the comparison viewer (``srgan_lib.viz.comparison_widget``, notebook 05) the widgets must be on the page
and answer: each control changes the picture (a round trip through the kernel). A full-page screenshot
of every notebook goes to ``results/browser/``. Run only these with ``pytest -m browser``, or leave them
out with ``-m "not browser"``; the fixtures (``conftest.py``) say when they skip.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
VIEWER_CALL = "viz.comparison_widget("
SCREENSHOTS = Path(os.environ.get("SRGAN_RESULTS", PROJECT_ROOT / "results")) / "browser"

# Bounds, generous against a busy two-core machine: in the smoke profile a kernel starts in ~3 s, a
# notebook runs in 5-25 s, a widget answers in well under a second.
KERNEL_READY_MS = 120_000
RUN_ALL_MS = 300_000
WIDGET_MS = 60_000
START_MS = 20_000  # from the click to the first [*]: immediate, unless the click was lost
RUN_ALL_ATTEMPTS = 3
MAX_SCREENSHOT_PX = 16_000  # Chromium's largest texture is 16384 px

PANEL = ".jp-NotebookPanel"
INDICATOR = f"{PANEL} .jp-Notebook-ExecutionIndicator"

#: True when the notebook's kernel is connected and idle (``window.jupyterapp``: see conftest.py) and the
#: toolbar's indicator says so too.
_KERNEL_READY = """() => {
  const kernel = window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel;
  return kernel?.connectionStatus === 'connected' && kernel.status === 'idle'
      && document.querySelector('INDICATOR')?.dataset.status === 'idle';
}""".replace("INDICATOR", INDICATOR)

#: True once a run has begun: some code cell is queued or running ([*]) or has run.
_STARTED = """() => [...document.querySelectorAll('PANEL .jp-CodeCell .jp-InputPrompt')].some(
    p => /[*\\d]/.test(p.textContent))""".replace("PANEL", PANEL)

#: True once Run All has finished: the kernel idle, nothing queued or running ([*]), and something ran.
#: A cell that raises stops the run, and the cells after it keep an empty prompt: the checks catch that.
_FINISHED = """() => {
  const indicator = document.querySelector('INDICATOR');
  const prompts = [...document.querySelectorAll('PANEL .jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
  return indicator?.dataset.status === 'idle' && !prompts.some(p => p.includes('*'))
      && prompts.some(p => /\\d/.test(p));
}""".replace("INDICATOR", INDICATOR).replace("PANEL", PANEL)

#: What the page shows after the run, and what the notebook's model holds (window.jupyterapp).
_REPORT = """() => {
  const panel = document.querySelector('PANEL');
  const cells = [...panel.querySelectorAll('.jp-CodeCell')];
  const prompts = cells.map(c => c.querySelector('.jp-InputPrompt')?.textContent.trim() ?? '');
  const raised = /Traceback|^[A-Za-z_][\\w.]*(Error|Exception|Interrupt)(:|$)/m;
  const errors = [];
  cells.forEach((cell, i) => cell.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').forEach(out => {
    if (raised.test(out.textContent)) errors.push(`code cell ${i + 1} ${prompts[i]}\\n${out.textContent.slice(-1500)}`);
  }));
  const images = [...panel.querySelectorAll('.jp-OutputArea-output img')].map(
      img => ({width: img.naturalWidth, src: img.src.slice(0, 50)}));
  const model = window.jupyterapp?.shell.currentWidget?.context?.model?.toJSON();
  const modelErrors = model ? model.cells.flatMap((c, i) => (c.outputs ?? [])
      .filter(o => o.output_type === 'error').map(o => `cell ${i}: ${o.ename}: ${o.evalue}`)) : null;
  const text = document.body.innerText;
  return {prompts, errors, images, modelErrors, pngOutputs: panel.querySelectorAll(
            '.jp-OutputArea-output[data-mime-type="image/png"]').length,
          widgetError: text.includes('Error displaying widget'), jsError: text.includes('Javascript Error')};
}""".replace("PANEL", PANEL)

#: The picture a widget shows: its size and a digest of its bytes (blob: URLs are same-origin).
_PICTURE = """async img => {
  try { await img.decode(); } catch (e) { return {src: img.src, width: 0, sha: null}; }
  const bytes = await (await fetch(img.src)).arrayBuffer();
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return {src: img.src, width: img.naturalWidth, sha: [...digest].map(b => b.toString(16).padStart(2, '0')).join('')};
}"""


def _timeout_error():
    # deferred: Playwright is a dev dependency (conftest.py skips without it)
    from playwright.sync_api import TimeoutError

    return TimeoutError


def _open(page, lab, name: str) -> None:
    page.goto(lab.notebook_url(name))
    try:
        # the toolbar's indicator says "idle" before a kernel is connected, so the session is asked as well:
        # Run All before that clears the prompts and runs nothing
        page.wait_for_function(_KERNEL_READY, timeout=KERNEL_READY_MS, polling=250)
    except _timeout_error():
        pytest.fail(f"{name}: no idle kernel within {KERNEL_READY_MS / 1000:.0f} s\n{lab.log_tail()}")


def _run_all_cells(page, lab, name: str) -> None:
    """Run > Run All Cells, as a student would, then wait until the run has ended."""
    # the notebook has the focus, so that its commands are enabled (a prompt: no link, no editor under it)
    page.locator(f"{PANEL} .jp-CodeCell .jp-InputPrompt").first.click()
    for attempt in range(1, RUN_ALL_ATTEMPTS + 1):
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator('.lm-Menu-item[data-command="runmenu:run-all"]:not(.lm-mod-disabled)').click()
        try:  # queued cells show [*] at once: a click that was lost shows nothing
            page.wait_for_function(_STARTED, timeout=START_MS, polling=250)
            break
        except _timeout_error():
            if attempt == RUN_ALL_ATTEMPTS:
                pytest.fail(f"{name}: Run > Run All Cells started nothing, {attempt} times\n{lab.log_tail()}")
            page.keyboard.press("Escape")
    try:
        page.wait_for_function(_FINISHED, timeout=RUN_ALL_MS, polling=500)
    except _timeout_error():
        status = page.locator(INDICATOR).get_attribute("data-status")
        prompts = page.locator(f"{PANEL} .jp-CodeCell .jp-InputPrompt").all_text_contents()
        pytest.fail(f"{name}: Run All did not finish within {RUN_ALL_MS / 1000:.0f} s (kernel {status!r}, "
                    f"prompts {prompts})\n{lab.log_tail()}")
    # images decode asynchronously: wait until every one has loaded (or failed: naturalWidth 0, checked later)
    page.wait_for_function(f"() => [...document.querySelectorAll('{PANEL} .jp-OutputArea-output img')]"
                           ".every(img => img.complete)", timeout=WIDGET_MS)


def _check_viewer(page) -> None:
    """The comparison viewer is on the page, and its toggle and image dropdown change the picture."""
    from playwright.sync_api import expect  # deferred: see _timeout_error

    toggles = page.locator(f"{PANEL} .widget-toggle-buttons")
    # widgets render after the kernel is idle (the widget manager loads lazily): wait for them, within bounds
    expect(toggles, "the comparison viewer's ToggleButtons are not on the page").to_have_count(1, timeout=WIDGET_MS)
    viewer = toggles.locator("xpath=..")  # the VBox: [HBox(image, run), toggle, caption, picture]
    picture, caption = viewer.locator("img.widget-image"), viewer.locator(".widget-html-content")
    image_pick = viewer.locator(".widget-dropdown select").first
    viewer.scroll_into_view_if_needed()

    seen = [picture.evaluate(_PICTURE)]
    assert seen[0]["width"] > 0, "the viewer's picture did not render"
    expect(caption).to_contain_text("SR of", timeout=WIDGET_MS)  # the notebook leaves the toggle on SR

    def changes_picture(action, caption_text: str) -> None:
        action()
        expect(picture, f"the picture did not change (expected: {caption_text!r})").not_to_have_attribute(
            "src", seen[-1]["src"], timeout=WIDGET_MS)
        expect(caption).to_contain_text(caption_text, timeout=WIDGET_MS)
        now = picture.evaluate(_PICTURE)
        assert now["width"] > 0, f"the picture did not render after {caption_text!r}"
        assert now["sha"] not in {s["sha"] for s in seen}, f"{caption_text!r} shows a picture seen before"
        seen.append(now)

    for view, expected in (("bicubic", "bicubic of"), ("HR", "inf dB")):  # HR against itself: inf dB
        button = toggles.locator(f'button[data-value="{view}"]')
        changes_picture(button.click, expected)
        expect(button).to_have_class(re.compile(r"\bmod-active\b"), timeout=WIDGET_MS)
    other = image_pick.locator("option").nth(1).get_attribute("value")
    changes_picture(lambda: image_pick.select_option(other), other)


def _screenshot(page, stem: str) -> None:
    """The whole notebook in one PNG: the page is made as tall as the notebook's scrolled content."""
    # deferred: see _timeout_error
    from playwright.sync_api import Error as PlaywrightError

    try:
        height = page.evaluate(f"() => document.querySelector('{PANEL} .jp-WindowedPanel-outer')?.scrollHeight ?? 0")
        page.set_viewport_size({"width": 1280, "height": max(900, min(int(height) + 200, MAX_SCREENSHOT_PX))})
        page.wait_for_timeout(500)  # JupyterLab lays out again on resize
        # Run All left the notebook scrolled to its last cell: back to the top, so that all of it is in view
        page.evaluate(f"() => document.querySelector('{PANEL} .jp-WindowedPanel-outer')?.scrollTo(0, 0)")
        page.wait_for_timeout(200)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{stem}.png", full_page=True)
    except (PlaywrightError, OSError) as err:  # a by-product: never hide the test's own failure behind it
        warnings.warn(f"no screenshot of {stem}: {err}")


def test_a_notebook_shows_the_comparison_viewer():
    """The viewer check below runs where the viewer is used: make sure it does not silently vanish."""
    assert any(VIEWER_CALL in p.read_text(encoding="utf-8") for p in NOTEBOOKS), f"no notebook calls {VIEWER_CALL}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_jupyterlab(page, jupyterlab, path):
    page_errors: list[str] = []
    page.on("pageerror", lambda err: page_errors.append(str(err)))
    try:
        _open(page, jupyterlab, path.name)
        _run_all_cells(page, jupyterlab, path.name)
        report = page.evaluate(_REPORT)
        where = f"{path.name} (page errors: {page_errors or 'none'})"
        assert not report["errors"], f"{where}: a cell shows an error:\n" + "\n\n".join(report["errors"])
        assert not report["modelErrors"], f"{where}: error outputs in the notebook: {report['modelErrors']}"
        not_run = [i + 1 for i, p in enumerate(report["prompts"]) if not re.fullmatch(r"\[\d+\]:", p)]
        assert not not_run, f"{where}: code cells {not_run} did not run (prompts {report['prompts']})"
        broken = [img for img in report["images"] if img["width"] == 0]
        assert not broken, f"{where}: {len(broken)} of {len(report['images'])} images did not render: {broken}"
        source = path.read_text(encoding="utf-8")
        if "plt.show(" in source:
            assert report["pngOutputs"], f"{where}: figures are shown but no image output rendered"
        assert not report["widgetError"], f"{where}: 'Error displaying widget' on the page"
        assert not report["jsError"], f"{where}: 'Javascript Error' on the page"
        if VIEWER_CALL in source:
            _check_viewer(page)
            assert "Error displaying widget" not in page.inner_text("body"), f"{where}: a widget failed"
    finally:
        _screenshot(page, path.stem)
