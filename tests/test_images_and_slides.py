"""Fast tests of scripts/draw_images.py (the drawings that need no teacher) and scripts/build_slides.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


draw_images = _load("draw_images")
build_slides = _load("build_slides")


def _figure_cell(source: str = "plt.plot([1, 2])"):
    return new_code_cell(source, outputs=[new_output("display_data", data={"image/png": TINY_PNG, "text/plain": "<Figure>"})])


def _slide_types(notebook) -> list[str]:
    return [cell.metadata["slideshow"]["slide_type"] for cell in notebook.cells]


# ----------------------------------------------------------------------------- slide tagging


def test_heading_level_needs_hashes_then_a_space():
    assert build_slides.heading_level("# Title\ntext") == 1
    assert build_slides.heading_level("\n## Section") == 2
    assert build_slides.heading_level("### Sub") == 3
    assert build_slides.heading_level("#hashtag is not a heading") == 0
    assert build_slides.heading_level("plain prose") == 0


def test_headings_start_slides_and_subslides_and_other_cells_continue():
    notebook = new_notebook(cells=[
        new_markdown_cell("# 01 · Title\n[Index](00_index.ipynb)"),
        new_code_cell("import kd_utils as kd"),
        new_markdown_cell("## 1 · A section"),
        new_markdown_cell("Prose about the idea."),
        new_code_cell("print(1)", outputs=[new_output("stream", name="stdout", text="1\n")]),
        new_markdown_cell("### A subsection"),
        new_markdown_cell("#### a small heading stays on its slide"),
    ])
    assert build_slides.tag_cells(notebook.cells) == 7
    assert _slide_types(notebook) == ["slide", "-", "slide", "-", "-", "subslide", "-"]


def test_figure_cell_opens_a_subslide_unless_right_under_a_heading():
    notebook = new_notebook(cells=[
        new_markdown_cell("## A section"),
        _figure_cell(),  # stays with its heading
        _figure_cell(),  # a second figure gets a screen of its own
        new_markdown_cell("What the figure shows."),
        _figure_cell(),
        new_code_cell("x = 1"),  # no image: continues
    ])
    build_slides.tag_cells(notebook.cells)
    assert _slide_types(notebook) == ["slide", "-", "subslide", "-", "subslide", "-"]


def test_hand_set_tags_are_kept_unless_retag():
    notebook = new_notebook(cells=[new_markdown_cell("# Title"), new_markdown_cell("Notes for the speaker.")])
    notebook.cells[1].metadata["slideshow"] = {"slide_type": "notes"}
    assert build_slides.tag_cells(notebook.cells) == 1
    assert _slide_types(notebook) == ["slide", "notes"]
    assert build_slides.tag_cells(notebook.cells) == 0
    assert build_slides.tag_cells(notebook.cells, retag=True) == 1
    assert _slide_types(notebook) == ["slide", "-"]


def test_tag_notebook_keeps_outputs_and_rewrites_only_when_something_changed(tmp_path):
    notebook = new_notebook(cells=[new_markdown_cell("# Title"), _figure_cell(), new_markdown_cell("## Next")])
    path = tmp_path / "demo.ipynb"
    nbformat.write(notebook, path)
    assert build_slides.tag_notebook(path) == 3
    tagged = nbformat.read(path, as_version=4)
    assert _slide_types(tagged) == ["slide", "-", "slide"]
    assert tagged.cells[1].outputs == notebook.cells[1].outputs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.ipynb"]  # no temporary file left behind
    modified = path.stat().st_mtime_ns
    assert build_slides.tag_notebook(path) == 0
    assert path.stat().st_mtime_ns == modified


def test_export_writes_a_reveal_deck_without_executing(tmp_path):
    notebook = new_notebook(cells=[new_markdown_cell("# Title"), new_code_cell("raise SystemExit('never run')")])
    path = tmp_path / "demo.ipynb"
    nbformat.write(notebook, path)
    assert build_slides.main(["--out", str(tmp_path / "slides"), str(path)]) == 0
    html = (tmp_path / "slides" / "demo.slides.html").read_text(encoding="utf-8")
    assert "reveal" in html and "never run" in html


# ----------------------------------------------------------------------------- images


@pytest.mark.parametrize("name", sorted(draw_images.PURE_FIGURES))
def test_pure_drawing_makes_a_clean_projector_sized_png(name, tmp_path):
    figure = draw_images.PURE_FIGURES[name]()
    assert draw_images.layout_problems(figure) == []
    path = draw_images.save_figure(figure, tmp_path / f"{name}.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    width = int.from_bytes(path.read_bytes()[16:20], "big")
    assert 1200 <= width <= 1600


def test_drawing_twice_gives_identical_files(tmp_path):
    first = draw_images.save_figure(draw_images.teacher_student_figure(), tmp_path / "first.png")
    second = draw_images.save_figure(draw_images.teacher_student_figure(), tmp_path / "second.png")
    assert first.read_bytes() == second.read_bytes()


def test_dark_knowledge_figure_draws_any_logits(tmp_path):
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(1, 28, 28, generator=generator)
    logits = torch.tensor([-1.0, -8.8, 1.2, -3.7, 3.9, -7.5, 5.6, -8.0, -3.5, -6.5])
    figure = draw_images.dark_knowledge_figure(image, logits, true_class=6)
    assert draw_images.layout_problems(figure) == []
    assert draw_images.save_figure(figure, tmp_path / "dark.png").read_bytes().startswith(PNG_SIGNATURE)


def test_choose_example_prefers_a_confident_but_not_certain_correct_image():
    logits = torch.tensor([
        [0.0, 9.0, 0.0],  # class 1, wrong
        [0.0, 0.0, 20.0],  # class 2, right but certain
        [0.0, 1.0, 3.0],  # class 2, right, top probability about 0.84
    ])
    labels = torch.tensor([2, 2, 2])
    assert draw_images.choose_example(logits, labels, class_index=2) == 2
    assert draw_images.choose_example(logits[:2], labels[:2], class_index=2) == 1  # falls back to any correct one
    with pytest.raises(ValueError, match="no image of class"):
        draw_images.choose_example(logits[:1], labels[:1], class_index=2)


def test_layout_check_catches_text_that_overflows_its_box():
    diagram = draw_images.Diagram(4, 3)
    diagram.box(2, 1.5, "far too much text for so small a box", width=1.0, height=0.5)
    assert any("does not fit its box" in problem for problem in draw_images.layout_problems(diagram.figure))


def test_main_draws_only_the_images_asked_for(tmp_path):
    assert draw_images.main(["--only", "temperature_scaling", "--out", str(tmp_path)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["temperature_scaling.png"]
