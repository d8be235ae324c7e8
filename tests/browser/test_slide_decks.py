"""The reveal.js decks of `make slides`, opened in headless Chromium with the network cut off.

Each deck is exported from the current notebooks (`scripts/build_slides.py --no-tag`: what `make slides`
does, without rewriting the tags) into a temporary folder that gets a copy of the set-up's slides/lib,
and opened from file:// with every non-local request aborted, so a pass proves the deck starts offline.
A deck passes when reveal.js is ready, its slide counter shows as many slides as the notebook has slide
and subslide cells, every formula was typeset by MathJax (none left as raw TeX, no MathJax error), every
slide taller than the 1280x720 screen can be scrolled, and no code line or table runs off a slide's right
edge. A slide that holds more than fits on the screen while a subslide at a cell boundary would fix it
fails (`make fit-slides` places them); what is left taller than the screen is one cell a tag cannot split,
and slides taller than two screens are reported as warnings and in tests/artifacts/slides_report.json.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import nbformat
import pytest
from browser_support import course_notebooks, load_build_slides
from deck_check import VIEWPORT, overflowing

RAW_TEX = re.compile(r"\$\$|(?<![\\\w])\$[^\s$][^$]*\$|\\\(|\\\[|\\(frac|sum|log|exp|mathrm|text|sigma|tau)\b")

build_slides = load_build_slides()


def _has_math(notebook) -> bool:
    return any(cell.cell_type == "markdown" and "$" in cell.source for cell in notebook.cells)


@pytest.fixture(scope="session")
def deck_reports(deck_export) -> dict[str, dict]:
    """What each deck showed in Chromium (tests/browser/deck_check.py, run beside the JupyterLab tests)."""
    return deck_export.reports()


NOTEBOOK_IDS = [path.stem for path in course_notebooks()]


@pytest.mark.parametrize("notebook", course_notebooks(), ids=NOTEBOOK_IDS)
def test_deck_starts_offline_with_one_slide_per_slide_cell(notebook: Path, deck_reports):
    report = deck_reports[notebook.name]
    needed = [url for kind, url in report["blocked"] if kind != "image"]
    assert not needed, f"{notebook.stem} deck fetches from the network: {needed[:5]}"
    images = [url for kind, url in report["blocked"] if kind == "image"]
    if images:  # a remote picture in the prose (the Colab badge) shows its alt text offline; the deck still works
        warnings.warn(f"{notebook.stem} deck: remote images not shown offline: {sorted(set(images))}", stacklevel=1)
    assert not report["page_errors"], f"{notebook.stem} deck: script errors {report['page_errors']}"
    assert "error" not in report, f"{notebook.stem}: {report['error']}"
    expected = build_slides.expected_slide_count(nbformat.read(notebook, as_version=4))
    assert report["total"] == expected, f"{notebook.stem}: reveal.js counts {report['total']} slides, the notebook has {expected}"
    assert report["shown"] == f"1/{expected}", f"{notebook.stem}: the slide counter shows {report['shown']!r}, not '1/{expected}'"


@pytest.mark.parametrize("notebook", course_notebooks(), ids=NOTEBOOK_IDS)
def test_deck_formulas_are_typeset(notebook: Path, deck_reports):
    report = deck_reports[notebook.name]
    assert "error" not in report, f"{notebook.stem}: {report['error']}"
    raw = [text[:80] for text in report["prose"] if RAW_TEX.search(text)]
    assert not raw, f"{notebook.stem} deck shows raw TeX: {raw[:5]}"
    assert not report["mathErrors"], f"{notebook.stem} deck: MathJax errors {report['mathErrors'][:5]}"
    if _has_math(nbformat.read(notebook, as_version=4)):
        assert report["formulas"] > 0, f"{notebook.stem} has formulas but its deck typeset none"


@pytest.mark.parametrize("notebook", course_notebooks(), ids=NOTEBOOK_IDS)
def test_deck_slides_taller_than_the_screen_scroll(notebook: Path, deck_reports):
    report = deck_reports[notebook.name]
    assert "error" not in report, f"{notebook.stem}: {report['error']}"
    cut_off = [f"slide {s['h'] + 1}.{s['v'] + 1} {s['title'][:50]!r} ({s['height']} px)"
               for s in report["slides"] if s["height"] > VIEWPORT["height"] and not s["scrollable"]]
    assert not cut_off, f"{notebook.stem} deck: slides taller than the screen that cannot scroll (cut off): {cut_off}"
    long_slides = overflowing(report)
    if long_slides:
        warnings.warn(f"{notebook.stem} deck: {len(long_slides)} slide(s) longer than one scroll past a 1280x720 screen: "
                      + "; ".join(long_slides), stacklevel=1)


@pytest.mark.parametrize("notebook", course_notebooks(), ids=NOTEBOOK_IDS)
def test_deck_slides_fit_the_screen_where_a_subslide_can_make_them(notebook: Path, deck_reports):
    report = deck_reports[notebook.name]
    assert "error" not in report, f"{notebook.stem}: {report['error']}"
    notebook_cells = nbformat.read(notebook, as_version=4)
    # 10 % above the screen that `make fit-slides` fits to, so a pixel of rendering noise does not fail the suite
    breaks = build_slides.plan_breaks(notebook_cells, report["slides"], limit=1.1 * build_slides.SCREEN_HEIGHT)
    starts = [f"cell {i} ({cell.source[:40]!r})" for i, cell in enumerate(notebook_cells.cells) if cell.get("id") in breaks]
    assert not breaks, (f"{notebook.stem} deck: slides run past the screen where a subslide would fit them, "
                        f"at {starts[:5]}: run `make fit-slides`")


@pytest.mark.parametrize("notebook", course_notebooks(), ids=NOTEBOOK_IDS)
def test_no_code_line_or_table_runs_off_the_right_edge_of_a_slide(notebook: Path, deck_reports):
    report = deck_reports[notebook.name]
    assert "error" not in report, f"{notebook.stem}: {report['error']}"
    cells = nbformat.read(notebook, as_version=4).cells
    wide = {cell_id for slide in report["slides"] for cell_id in slide["wide"]}
    cut = [f"cell {i} ({cell.source[:40]!r})" for i, cell in enumerate(cells) if cell.get("id") in wide]
    assert not cut, f"{notebook.stem} deck: code or a table cut off at the right edge of the slide: {cut[:5]}"
