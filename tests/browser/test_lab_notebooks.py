"""Notebooks run in JupyterLab in headless Chromium as a learner runs them: Run All Cells, in smoke mode.

One Lab server and one page serve them, one after another. A notebook passes when, after *Run All
Cells* and the kernel going idle, no cell shows an error or anything on stderr, every code cell has
an execution number and every widget (tqdm bars, 02's temperature slider) rendered. The notebooks
run from a copy and are closed without saving.

nbval already runs every notebook and fails a cell that shows an error or writes to stderr (the root
conftest.py; tqdm's "IProgress not found" would be such a line), so Lab re-runs only what nbval cannot
see: the index and 02, whose live slider is an ipywidget like every tqdm bar. Running all of them twice cost
about 270 s of every test run.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from browser_support import ARTIFACTS, course_notebooks

RUN_TIMEOUT_S = 600  # one notebook in smoke mode: seconds on a quiet 2-core machine, minutes on a busy one
WIDGET_SETTLE_TIMEOUT_S = 30
SLIDER_REDRAW_TIMEOUT_S = 60
SCREENSHOT_NOTEBOOK = "02"  # the one with the slider: the screenshot shows a live widget

OPEN_AND_RUN_ALL = """async ({path, timeoutMs}) => {
  const app = window.jupyterapp;
  const limit = (promise, what) => Promise.race([promise, new Promise((_, reject) => setTimeout(
      () => reject(new Error(`${what} did not finish within ${timeoutMs / 1000} s`)), timeoutMs))]);
  const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  await limit(panel.context.ready, 'opening the notebook');
  await limit(panel.sessionContext.ready, 'starting the kernel');
  app.shell.activateById(panel.id);
  await panel.revealed;
  window.kdPanels = Object.assign(window.kdPanels || {}, {[panel.id]: panel});
  const started = performance.now();
  // The command behind Run > Run All Cells; it resolves once every cell has run (false if one failed).
  const succeeded = await limit(app.commands.execute('notebook:run-all-cells'), 'Run All Cells');
  const idle = new Promise(resolve => {
    const check = () => panel.sessionContext.session?.kernel?.status === 'idle' ? resolve() : setTimeout(check, 100);
    check();
  });
  await limit(idle, 'waiting for the kernel to go idle');
  return {id: panel.id, succeeded, seconds: (performance.now() - started) / 1000};
}"""

WIDGETS_SETTLED = """(id) => Array.from(window.kdPanels[id].content.node.querySelectorAll('.jp-OutputArea-output'))
  .every(node => !node.textContent.includes('Loading widget'))"""

COLLECT = """(id) => {
  const panel = window.kdPanels[id];
  const cells = panel.content.model.cells;
  const node = panel.content.node;
  const short = text => String(text).trim().replace(/\\s+/g, ' ').slice(0, 200);
  const code = [];
  for (let index = 0; index < cells.length; index++) {
    const cell = cells.get(index);
    if (cell.type !== 'code') continue;
    const outputs = cell.outputs.toJSON();
    code.push({
      index, count: cell.executionCount,
      errors: outputs.filter(o => o.output_type === 'error').map(o => `${o.ename}: ${short(o.evalue)}`),
      stderr: outputs.filter(o => o.output_type === 'stream' && o.name === 'stderr').map(o => short(o.text)),
      widgets: outputs.filter(o => (o.data || {})['application/vnd.jupyter.widget-view+json'] !== undefined).length,
    });
  }
  // A widget that rendered is a .jupyter-widgets element; without the widget manager Lab would show the
  // text/plain fallback ("VBox(...)") instead, and a missing model shows "Error displaying widget".
  const outputNodes = Array.from(node.querySelectorAll('.jp-OutputArea-output'));
  return {
    modelCells: cells.length,
    pageCells: node.querySelectorAll('.jp-Cell').length,
    code,
    prompts: Array.from(node.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')).map(p => p.textContent.trim()),
    stderrShown: Array.from(node.querySelectorAll(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')).map(o => short(o.textContent)),
    widgets: code.reduce((total, cell) => total + cell.widgets, 0),
    widgetsRendered: node.querySelectorAll('.jp-OutputArea-output > .jupyter-widgets').length,
    widgetErrors: outputNodes.filter(o => /Error displaying widget|Error rendering widget|Loading widget/.test(o.textContent))
        .map(o => short(o.textContent)),
  };
}"""

CLOSE_WITHOUT_SAVING = """(id) => {
  const panel = window.kdPanels[id];
  panel.context.model.dirty = false;  // no "save your changes?" dialog: nothing is saved
  // The kernel shuts down while the next notebook opens (waiting for it costs about 2 s a notebook).
  panel.sessionContext.shutdown().catch(error => console.warn('kernel shutdown:', error));
  panel.dispose();
  delete window.kdPanels[id];
}"""


def _is_local(url: str) -> bool:
    return url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:"))


class LabSession:
    """One page of JupyterLab that runs notebooks one after another and remembers what it saw."""

    def __init__(self, browser, server) -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.blocked: list[str] = []
        self.context.route("**/*", self._offline)  # Lab offline: news, update checks, CDNs all refused
        self.page = self.context.new_page()
        self.page.goto(server.url)
        self.page.wait_for_function("() => window.jupyterapp !== undefined", timeout=120_000)
        self.page.evaluate("() => window.jupyterapp.restored")
        self.results: dict[str, dict] = {}

    def _offline(self, route) -> None:
        if _is_local(route.request.url):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def run(self, notebook: Path) -> dict:
        """Open a notebook, Run All Cells, collect what the page shows, run its probes, close it unsaved."""
        if notebook.name in self.results:
            return self.results[notebook.name]
        relative = f"notebooks/{notebook.name}"
        started = time.perf_counter()
        opened = self.page.evaluate(OPEN_AND_RUN_ALL, {"path": relative, "timeoutMs": RUN_TIMEOUT_S * 1000})
        panel = opened["id"]
        settled = True
        try:
            self.page.wait_for_function(WIDGETS_SETTLED, arg=panel, timeout=WIDGET_SETTLE_TIMEOUT_S * 1000)
        except Exception:  # Playwright's TimeoutError: the widgets that never rendered are reported below
            settled = False
        result = self.page.evaluate(COLLECT, panel)
        result.update(run_all_succeeded=opened["succeeded"], run_seconds=opened["seconds"], widgets_settled=settled)
        if notebook.name.startswith(SCREENSHOT_NOTEBOOK):
            result["slider"] = probe_temperature_slider(self.page, panel)
        self.page.evaluate(CLOSE_WITHOUT_SAVING, panel)
        result["seconds"] = time.perf_counter() - started
        self.results[notebook.name] = result
        return result

    def close(self) -> None:
        self.context.close()
        report = {name: {key: value for key, value in result.items() if key != "code"} for name, result in self.results.items()}
        (ARTIFACTS / "lab_report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")


def probe_temperature_slider(page, panel: str) -> dict:
    """Move 02's T slider two steps with the keyboard and report whether the soft-target plot was redrawn."""
    label = page.locator(".widget-label", has_text=re.compile(r"^\s*T\s*$"))
    sliders = page.locator(f"[id='{panel}'] .widget-slider").filter(has=label)
    if sliders.count() == 0:
        return {"error": "no T slider in 02: expected an ipywidgets FloatSlider with description 'T' "
                         "that redraws a plot inside a widget Output"}
    slider = sliders.first
    area = slider.locator("xpath=ancestor::div[contains(@class, 'jp-OutputArea-output')][1]")
    image = area.locator(".widget-output img")
    try:
        image.first.wait_for(state="attached", timeout=SLIDER_REDRAW_TIMEOUT_S * 1000)
    except Exception:
        return {"error": "02's T slider shows no plot image in its widget Output"}
    before = image.first.get_attribute("src")
    readout = slider.locator(".widget-readout")
    value_before = readout.inner_text().strip()
    slider.scroll_into_view_if_needed()
    slider.locator(".noUi-handle").first.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    value_after = readout.inner_text().strip()
    try:
        page.wait_for_function(
            "([area, before]) => { const img = area.querySelector('.widget-output img');"
            " return img !== null && img.getAttribute('src') !== before; }",
            arg=[area.element_handle(), before], timeout=SLIDER_REDRAW_TIMEOUT_S * 1000)
    except Exception:
        return {"error": f"moving 02's T slider from {value_before} to {value_after} did not redraw its plot "
                         f"within {SLIDER_REDRAW_TIMEOUT_S} s", "before": value_before, "after": value_after}
    # the second step's redraw may still be running: let the kernel finish before the screenshot
    page.wait_for_function("(id) => window.kdPanels[id].sessionContext.session?.kernel?.status === 'idle'",
                           arg=panel, timeout=SLIDER_REDRAW_TIMEOUT_S * 1000)
    slider.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lab_02_temperature_slider.png"))
    return {"before": value_before, "after": value_after, "redrawn": True}


@pytest.fixture(scope="module")
def lab(browser, lab_server, artifacts, deck_export):  # deck_export: the decks are exported meanwhile
    session = LabSession(browser, lab_server)
    yield session
    session.close()


def problems_in(result: dict) -> list[str]:
    """Return what a learner would see go wrong in a notebook run in Lab, one line each."""
    problems = []
    if result["pageCells"] != result["modelCells"]:
        problems.append(f"only {result['pageCells']} of {result['modelCells']} cells are in the page: "
                        "notebook windowing is on, so the checks below would miss cells")
    for cell in result["code"]:
        where = f"cell {cell['index']}"
        problems += [f"{where}: error {error}" for error in cell["errors"]]
        problems += [f"{where}: stderr {text!r}" for text in cell["stderr"]]
        if cell["count"] is None:
            problems.append(f"{where}: no execution number (it never ran)")
    problems += [f"stderr shown in the page: {text!r}" for text in result["stderrShown"]]
    unnumbered = [prompt for prompt in result["prompts"] if not re.fullmatch(r"\[\d+\]:", prompt)]
    if unnumbered:
        problems.append(f"{len(unnumbered)} code cell prompt(s) without a number in the page: {unnumbered[:5]}")
    problems += [f"widget failed: {text}" for text in result["widgetErrors"]]
    if result["widgetsRendered"] < result["widgets"]:
        problems.append(f"only {result['widgetsRendered']} of {result['widgets']} widgets rendered in the page")
    if not result["run_all_succeeded"] and not problems:
        problems.append("Run All Cells reported a failure")
    return problems


LAB_NOTEBOOKS = ("00", "02")  # the index, and the slider: an ipywidget (as tqdm's bars are) that only a browser renders


@pytest.mark.parametrize("notebook", [path for path in course_notebooks() if path.name[:2] in LAB_NOTEBOOKS],
                         ids=lambda path: path.stem)
def test_notebook_runs_clean_in_jupyterlab(notebook: Path, lab: LabSession):
    result = lab.run(notebook)
    problems = problems_in(result)
    assert not problems, f"{notebook.name} in JupyterLab:\n" + "\n".join(problems)


def test_temperature_slider_in_02_redraws_the_soft_targets(lab: LabSession):
    notebooks = [path for path in course_notebooks() if path.name.startswith(SCREENSHOT_NOTEBOOK)]
    assert notebooks, "no notebook 02 in notebooks/"
    slider = lab.run(notebooks[0])["slider"]
    assert "error" not in slider, slider["error"]
    assert slider["before"] != slider["after"], f"the T slider did not move: {slider}"

