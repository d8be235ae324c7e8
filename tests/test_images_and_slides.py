"""Fast tests of scripts/draw_images.py (the drawings that need no teacher) and scripts/build_slides.py.

The slide tests need no network and no browser: npm is a stand-in, the assets are stand-ins, and the
decks are read as HTML (tests/browser opens real ones in Chromium)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

import kd_utils as kd

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


def test_tag_notebook_starts_again_from_a_version_written_meanwhile(tmp_path, monkeypatch):
    path = tmp_path / "demo.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("# Title")]), path)
    theirs = new_notebook(cells=[new_markdown_cell("# Theirs"), new_markdown_cell("## Also theirs")])
    tag_cells, calls = build_slides.tag_cells, []

    def tag_while_someone_writes(cells, retag=False):
        calls.append(len(cells))
        if len(calls) == 1:  # another program saves the notebook while the first tagging runs
            nbformat.write(theirs, path)
            os.utime(path, ns=(1, 1))
        return tag_cells(cells, retag=retag)

    monkeypatch.setattr(build_slides, "tag_cells", tag_while_someone_writes)
    assert build_slides.tag_notebook(path) == 2
    assert calls == [1, 2]
    assert [cell.source for cell in nbformat.read(path, as_version=4).cells] == ["# Theirs", "## Also theirs"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.ipynb"]


def _measured(heights: list[int], tags: list[str]):
    """A notebook of markdown cells with the given tags, and one measured slide holding them stacked."""
    cells = [new_markdown_cell(f"cell {i}", id=f"c{i}") for i in range(len(heights))]
    for cell, tag in zip(cells, tags):
        cell.metadata["slideshow"] = {"slide_type": tag}
    tops = [sum(heights[:i]) for i in range(len(heights))]
    slide = {"height": sum(heights), "cells": [{"id": f"c{i}", "top": top, "height": height}
                                               for i, (top, height) in enumerate(zip(tops, heights))]}
    return new_notebook(cells=cells), [slide]


def test_plan_breaks_starts_a_subslide_where_the_next_cell_would_not_fit():
    notebook, slides = _measured([300, 300, 300, 300, 300], ["slide", "-", "-", "-", "-"])
    assert build_slides.plan_breaks(notebook, slides, limit=720) == ["c2", "c4"]  # 600 | 600 | 300
    assert build_slides.plan_breaks(notebook, slides, limit=1500) == []


def test_plan_breaks_keeps_hand_set_tags_a_heading_with_its_content_and_a_lone_tall_cell():
    notebook, slides = _measured([500, 500, 300], ["slide", "fragment", "-"])
    assert build_slides.plan_breaks(notebook, slides, limit=720) == ["c2"]  # a fragment is the author's; not moved
    notebook, slides = _measured([100, 900, 900], ["slide", "-", "-"])
    assert build_slides.plan_breaks(notebook, slides, limit=720) == ["c2"]  # the heading stays with its first cell
    notebook, slides = _measured([2000], ["slide"])
    assert build_slides.plan_breaks(notebook, slides, limit=720) == []  # a tag cannot split one cell


def test_fit_notebook_marks_its_subslides_and_a_refit_of_the_fitted_deck_changes_nothing(tmp_path):
    notebook, slides = _measured([300, 300, 300], ["slide", "-", "-"])
    path = tmp_path / "demo.ipynb"
    nbformat.write(notebook, path)
    assert build_slides.fit_notebook(path, slides) == 1
    fitted = nbformat.read(path, as_version=4)
    assert _slide_types(fitted) == ["slide", "-", "subslide"]
    assert fitted.cells[2].metadata["slideshow"] == {"slide_type": "subslide", "fitted": True}
    remeasured = [{"height": 600, "cells": slides[0]["cells"][:2]},
                  {"height": 300, "cells": [dict(slides[0]["cells"][2], top=0)]}]
    modified = path.stat().st_mtime_ns
    assert build_slides.fit_notebook(path, remeasured) == 0
    assert path.stat().st_mtime_ns == modified
    assert build_slides.plan_breaks(fitted, remeasured) == []  # what the browser suite checks


def test_refit_joins_a_fitted_subslide_up_again_when_the_content_shrank_but_keeps_an_authors(tmp_path):
    notebook, _ = _measured([100, 100, 100, 100], ["slide", "-", "subslide", "subslide"])
    notebook.cells[2].metadata["slideshow"]["fitted"] = True  # cell 2 was fitted; cell 3 is the author's
    shrunk = [{"height": 200, "cells": [{"id": "c0", "top": 0, "height": 100}, {"id": "c1", "top": 100, "height": 100}]},
              {"height": 100, "cells": [{"id": "c2", "top": 0, "height": 100}]},
              {"height": 100, "cells": [{"id": "c3", "top": 0, "height": 100}]}]
    assert build_slides.plan_breaks(notebook, shrunk, limit=720, refit=True) == []
    path = tmp_path / "demo.ipynb"
    nbformat.write(notebook, path)
    assert build_slides.fit_notebook(path, shrunk) == 1
    refitted = nbformat.read(path, as_version=4)
    assert _slide_types(refitted) == ["slide", "-", "-", "subslide"]
    assert "fitted" not in refitted.cells[2].metadata["slideshow"]


@pytest.fixture
def installed_assets(tmp_path) -> Path:
    """A stand-in for slides/lib: every asset's folder with its stamp and entry file, so nothing is fetched."""
    folder = tmp_path / "assets"
    for asset in build_slides.ASSETS:
        entry = folder / asset.name / asset.entry
        entry.parent.mkdir(parents=True)
        entry.write_text("// stand-in")
        (folder / asset.name / build_slides.STAMP).write_text(json.dumps(build_slides.asset_stamp(asset)))
    return folder


class _Loads(HTMLParser):
    """Collect the URLs a page loads: script src, stylesheet href, image src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in {"script", "img"} and attributes.get("src"):
            self.urls.append(attributes["src"])
        if tag == "link" and attributes.get("href"):
            self.urls.append(attributes["href"])


def _export(tmp_path, installed_assets, notebook, **options) -> str:
    path = tmp_path / "demo.ipynb"
    nbformat.write(notebook, path)
    [deck] = build_slides.export_slides([path], tmp_path / "slides", assets=installed_assets, **options)
    return deck.read_text(encoding="utf-8")


def test_export_writes_a_reveal_deck_without_executing(tmp_path, installed_assets):
    notebook = new_notebook(cells=[new_markdown_cell("# Title"), new_code_cell("raise SystemExit('never run')")])
    path = tmp_path / "demo.ipynb"
    nbformat.write(notebook, path)
    out = tmp_path / "slides"
    assert build_slides.main(["--out", str(out), "--assets", str(installed_assets), str(path)]) == 0
    html = (out / "demo.slides.html").read_text(encoding="utf-8")
    assert "Reveal.initialize" in html and "never run" in html


def test_a_cell_that_only_writes_prose_shows_its_prose_on_the_slide_not_its_code(tmp_path, installed_assets):
    prose = new_code_cell("display(Markdown(f'written_by_code'))", outputs=[
        new_output("display_data", data={"text/markdown": "The gain is **+0.8 pp**.", "text/plain": "<Markdown>"})])
    printed = new_code_cell("print('printed_by_code')", outputs=[new_output("stream", name="stdout", text="a number\n")])
    html = _export(tmp_path, installed_assets, new_notebook(cells=[new_markdown_cell("# Title"), prose, printed]))
    assert "+0.8 pp" in html and "written_by_code" not in html
    assert "printed_by_code" in html and "a number" in html  # other code cells keep their code
    assert build_slides.writes_prose_only(prose) and not build_slides.writes_prose_only(printed)


def test_no_tag_exports_without_rewriting_the_notebook(tmp_path, installed_assets):
    path = tmp_path / "demo.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("# Title"), new_markdown_cell("## Untagged")]), path)
    before = path.read_bytes()
    out = tmp_path / "slides"
    assert build_slides.main(["--no-tag", "--out", str(out), "--assets", str(installed_assets), str(path)]) == 0
    assert path.read_bytes() == before and (out / "demo.slides.html").exists()


def test_building_the_decks_tags_them_but_never_rewrites_a_notebook(tmp_path, installed_assets):
    path = tmp_path / "demo.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("# Title"), new_markdown_cell("## Untagged")]), path)
    before = path.read_bytes()
    tagged, untagged = tmp_path / "tagged", tmp_path / "untagged"
    assert build_slides.main(["--out", str(tagged), "--assets", str(installed_assets), str(path)]) == 0
    assert path.read_bytes() == before, "`make slides` must leave the notebooks as they are"
    assert build_slides.main(["--no-tag", "--out", str(untagged), "--assets", str(installed_assets), str(path)]) == 0
    sections = [(folder / "demo.slides.html").read_text(encoding="utf-8").count("<section") for folder in (tagged, untagged)]
    assert sections[0] > sections[1], "the deck starts a slide at '## Untagged' as the rule says"


def test_every_course_notebook_carries_its_slide_tags():
    """`make slides` tags untagged cells only in the decks; committed notebooks must already hold every tag, so the
    decks the browser suite checks (`--no-tag`) are the decks `make slides` builds."""
    for path in build_slides.course_notebooks():
        notebook = nbformat.read(path, as_version=4)
        untagged = [index for index, cell in enumerate(notebook.cells) if build_slides.existing_slide_type(cell) is None]
        assert not untagged, (f"{path.name}: cells {untagged} have no slide type; run "
                              "`python scripts/build_slides.py --tag-only` and commit the notebook")


def test_deck_loads_every_script_style_and_font_from_lib_beside_it(tmp_path, installed_assets):
    notebook = new_notebook(cells=[new_markdown_cell("# Title\n\n$$p_i = \\frac{e^{z_i/T}}{\\sum_j e^{z_j/T}}$$")])
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    html = _export(tmp_path, installed_assets, notebook)
    parser = _Loads()
    parser.feed(html)
    requires = re.findall(r'require\(\s*(?:\{[^}]*\},\s*)?\[([^\]]*)\]', html)
    widget_renderer = re.findall(r"var widgetRendererSrc = '([^']*)'", html)
    loaded = parser.urls + [url.strip().strip('"') for group in requires for url in group.split(",")] + widget_renderer
    assert requires and widget_renderer and len(parser.urls) >= 4
    assert [url for url in loaded if not url.startswith("lib/")] == []
    assert "mermaid" not in html.lower().split("<body", 1)[0]  # no Mermaid import from a CDN
    assert "theme/white.css" in html  # the theme that ships its fonts (nbconvert's default imports Google's)


def test_export_puts_the_assets_beside_the_decks_copied_or_linked(tmp_path, installed_assets):
    notebook = new_notebook(cells=[new_markdown_cell("# Title")])
    _export(tmp_path, installed_assets, notebook)
    lib = tmp_path / "slides" / "lib"
    assert not lib.is_symlink() and build_slides.missing_assets(lib) == []
    linked = tmp_path / "linked"
    build_slides.export_slides([tmp_path / "demo.ipynb"], linked, assets=installed_assets, link_assets=True)
    assert (linked / "lib").resolve() == installed_assets.resolve()


def _leaf_sections(html: str) -> int:
    """Count the <section>s holding no other section: what reveal.js counts as slides."""
    body = html.split('<div class="slides">', 1)[1]
    return len(re.findall(r"<section[^>]*>(?:(?!<section|</section>).)*</section>", body, flags=re.S))


@pytest.mark.parametrize("tags", [
    ["slide", "-", "subslide", "-", "slide", "fragment"],
    ["-", "slide", "notes", "subslide", "skip"],  # nbconvert makes the first visible cell a slide
    ["notes", "subslide", "-", "subslide"],  # ... a subslide one too, which changes nothing
    ["skip", "-", "-"],
])
def test_expected_slide_count_matches_the_sections_nbconvert_writes(tmp_path, installed_assets, tags):
    notebook = new_notebook(cells=[new_markdown_cell(f"cell {i}") for i in range(len(tags))])
    for cell, tag in zip(notebook.cells, tags):
        cell.metadata["slideshow"] = {"slide_type": tag}
    html = _export(tmp_path, installed_assets, notebook)
    assert build_slides.expected_slide_count(notebook) == _leaf_sections(html)


def test_expected_slide_count_counts_slides_and_subslides():
    notebook = new_notebook(cells=[new_markdown_cell(str(i)) for i in range(5)])
    for cell, tag in zip(notebook.cells, ["slide", "subslide", "-", "slide", "notes"]):
        cell.metadata["slideshow"] = {"slide_type": tag}
    assert build_slides.expected_slide_count(notebook) == 3


# ----------------------------------------------------------------------------- offline assets

FAKE_NPM = """#!{python}
# Stands in for `npm pack --silent --pack-destination DIR SPEC...`: one tarball per spec, names on stdout.
import io, json, os, sys, tarfile
log = os.environ["FAKE_NPM_LOG"]
with open(log, "a") as file:
    file.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_NPM_FAIL"):
    sys.stderr.write("npm error code E404\\nnpm error 404 Not Found - " + sys.argv[-1] + "\\n")
    sys.exit(1)
destination = sys.argv[sys.argv.index("--pack-destination") + 1]
keep = json.loads(os.environ["FAKE_NPM_FILES"])
for spec in sys.argv[sys.argv.index("--pack-destination") + 2:]:
    name = spec.lstrip("@").replace("/", "-").replace("@", "-") + ".tgz"
    with tarfile.open(os.path.join(destination, name), "w:gz") as archive:
        for relative in keep[spec] + ["src/not-needed.js"]:
            data = f"// {{spec}} {{relative}}".encode()
            member = tarfile.TarInfo("package/" + relative)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    print(name)
"""


@pytest.fixture
def fake_npm(tmp_path, monkeypatch) -> Path:
    """An `npm` that packs tarballs holding each asset's kept files (globs as one matching file) plus a stray file."""
    files = {asset.spec: [k.replace("*", "font") + "/x.js" if "." not in Path(k).name else k.replace("*", "font")
                          for k in asset.keep] for asset in build_slides.ASSETS}
    npm = tmp_path / "bin" / "npm"
    npm.parent.mkdir()
    npm.write_text(FAKE_NPM.format(python=sys.executable))
    npm.chmod(0o755)
    monkeypatch.setenv("FAKE_NPM_LOG", str(tmp_path / "npm.log"))
    monkeypatch.setenv("FAKE_NPM_FILES", json.dumps(files))
    return npm


def _npm_calls(tmp_path) -> list[list[str]]:
    log = tmp_path / "npm.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_install_assets_unpacks_only_the_kept_files_once(tmp_path, fake_npm, monkeypatch):
    folder = tmp_path / "lib"
    installed = build_slides.install_assets(folder, npm=str(fake_npm))
    assert installed == [asset.spec for asset in build_slides.ASSETS]
    for asset in build_slides.ASSETS:
        assert (folder / asset.name / asset.entry).is_file()
        assert not (folder / asset.name / "src").exists()  # sources and tests are not installed
    assert build_slides.missing_assets(folder) == []
    assert build_slides.install_assets(folder, npm=str(fake_npm)) == []  # up to date: npm is not called again
    assert len(_npm_calls(tmp_path)) == 1
    assert not [p for p in folder.iterdir() if p.name.startswith(".assets-")]  # no staging folder left behind
    newer = build_slides.Asset("jquery", "jquery@3.7.2", ("dist/jquery.min.js",), "dist/jquery.min.js")
    assets = tuple(newer if asset.name == "jquery" else asset for asset in build_slides.ASSETS)
    monkeypatch.setattr(build_slides, "ASSETS", assets)
    monkeypatch.setenv("FAKE_NPM_FILES", json.dumps({"jquery@3.7.2": ["dist/jquery.min.js"]}))
    assert build_slides.install_assets(folder, npm=str(fake_npm)) == ["jquery@3.7.2"]  # a new pin reinstalls it alone


def test_install_assets_names_a_kept_path_the_package_lacks(tmp_path, fake_npm, monkeypatch):
    files = json.loads(os.environ["FAKE_NPM_FILES"])
    files["requirejs@2.3.8"] = ["package.json"]  # no require.js in this version
    monkeypatch.setenv("FAKE_NPM_FILES", json.dumps(files))
    with pytest.raises(build_slides.AssetError, match="requirejs@2.3.8 has no require.js"):
        build_slides.install_assets(tmp_path / "lib", npm=str(fake_npm))


def test_install_assets_says_in_one_line_what_failed_and_what_to_do(tmp_path, fake_npm, monkeypatch):
    monkeypatch.setenv("FAKE_NPM_FAIL", "1")
    with pytest.raises(build_slides.AssetError) as failure:
        build_slides.install_assets(tmp_path / "lib", npm=str(fake_npm))
    message = str(failure.value)
    assert "404 Not Found" in message and "make setup" in message and "\n" not in message
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(build_slides.AssetError, match="`npm` was not found"):
        build_slides.install_assets(tmp_path / "lib")
    assert build_slides.main(["--install-assets", "--assets", str(tmp_path / "lib")]) == 1


def test_asset_url_names_the_known_assets_when_asked_for_another():
    assert build_slides.asset_url("mathjax") == "lib/mathjax/MathJax.js"
    with pytest.raises(KeyError, match="the assets are reveal.js, require.js"):
        build_slides.asset_url("katex")


# ----------------------------------------------------------------------------- images


@pytest.mark.parametrize("name", sorted(draw_images.PURE_FIGURES))
def test_pure_drawing_makes_a_clean_projector_sized_png(name, tmp_path):
    figure = draw_images.PURE_FIGURES[name]()
    assert draw_images.layout_problems(figure) == []
    path = draw_images.save_figure(figure, tmp_path / f"{name}.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    width = int.from_bytes(path.read_bytes()[16:20], "big")
    assert 1200 <= width <= 1600


def test_the_course_has_one_palette_in_kd_plots():
    """A colour written as #rrggbb anywhere in kd_utils or scripts but kd_utils/plots.py is a second palette."""
    root = SCRIPTS.parent
    sources = [*sorted((root / "kd_utils").glob("*.py")), *sorted(SCRIPTS.glob("*.py"))]
    second = {str(path.relative_to(root)): re.findall(r"#[0-9a-fA-F]{6}\b", path.read_text(encoding="utf-8"))
              for path in sources if path.name != "plots.py"}
    assert {path: colours for path, colours in second.items() if colours} == {}
    assert draw_images.PALETTE is kd.plots.BOX_COLORS


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
