"""A learner's pace (issue 20): no notebook over ~45 cells or ~2,500 words of prose, prose cells fold their code."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import sync_notebooks  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_CELLS, MAX_WORDS = 45, 2_500


def prose_words(notebook) -> int:
    """Words a learner reads: every markdown cell and every Markdown output that a code cell renders."""
    words = 0
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            words += len(cell.source.split())
        for output in cell.get("outputs", []):
            words += len("".join(output.get("data", {}).get("text/markdown", "")).split())
    return words


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_notebook_is_read_at_a_learners_pace(path):
    notebook = nbformat.read(path, as_version=4)
    assert len(notebook.cells) <= MAX_CELLS, f"{path.name}: {len(notebook.cells)} cells, more than {MAX_CELLS}"
    words = prose_words(notebook)
    assert words <= MAX_WORDS, f"{path.name}: {words:,} words of prose (rendered included), more than {MAX_WORDS:,}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_cell_that_only_renders_prose_keeps_its_code_folded_in_lab(path):
    notebook = nbformat.read(path, as_version=4)
    unfolded = [index for index, cell in enumerate(notebook.cells) if sync_notebooks.renders_prose_only(cell)
                and not cell.metadata.get("jupyter", {}).get("source_hidden")]
    assert not unfolded, f"{path.name}: cells {unfolded} only render prose; run scripts/sync_notebooks.py to fold their code"


def test_the_fold_rule_takes_rendered_prose_and_nothing_else():
    prose = nbformat.v4.new_code_cell("display(Markdown('x'))", outputs=[nbformat.v4.new_output(
        "display_data", data={"text/markdown": "x", "text/plain": "<Markdown>"})])
    printed = nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", name="stdout", text="1")])
    mixed = nbformat.v4.new_code_cell("", outputs=prose.outputs + printed.outputs)
    figure = nbformat.v4.new_code_cell("", outputs=[nbformat.v4.new_output("display_data", data={"image/png": "AA=="})])
    assert sync_notebooks.renders_prose_only(prose)
    assert not any(sync_notebooks.renders_prose_only(c) for c in (printed, mixed, figure, nbformat.v4.new_code_cell("")))
    assert prose_words(nbformat.v4.new_notebook(cells=[prose, nbformat.v4.new_markdown_cell("two words")])) == 3
