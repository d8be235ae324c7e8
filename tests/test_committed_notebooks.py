"""The committed notebooks diff cleanly: no per-cell timestamps, no environment noise in their outputs."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NOISE = re.compile(r"CUDA_HOME|No CUDA runtime|/root/|/home/|/tmp/|/work/|site-packages|Traceback")


def _outputs(notebook):
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            yield index, output


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_committed_notebook_holds_no_execution_timestamps(path):
    notebook = nbformat.read(path, as_version=4)
    stamped = [index for index, cell in enumerate(notebook.cells) if "execution" in cell.metadata]
    assert not stamped, f"{path.name}: cells {stamped} carry execution timestamps; re-run with scripts/run_notebooks.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_committed_notebook_holds_no_random_widget_ids(path):
    text = path.read_text(encoding="utf-8")
    assert not re.search(r'"model_id": "[0-9a-f]{32}"|IPY_MODEL_[0-9a-f]{32}', text), (
        f"{path.name} stores ipywidgets' random model ids, which change on every re-run; re-run with scripts/run_notebooks.py")


def test_widget_ids_are_numbered_the_same_whatever_ids_a_run_drew():
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "scripts" / "run_notebooks.py")
    run_notebooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_notebooks)

    def notebook_of(box: str, slider: str, layout: str) -> str:
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell(id="cell", outputs=[nbformat.v4.new_output(
            "display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": box, "version_major": 2}})])]
        notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {
            box: {"model_name": "VBoxModel", "state": {"children": [f"IPY_MODEL_{slider}"], "layout": f"IPY_MODEL_{layout}"}},
            slider: {"model_name": "FloatSliderModel", "state": {"layout": f"IPY_MODEL_{layout}"}},
            layout: {"model_name": "LayoutModel", "state": {}}}, "version_major": 2}}
        return run_notebooks.stable_widget_ids(nbformat.writes(notebook))

    first, second = notebook_of("a" * 32, "b" * 32, "c" * 32), notebook_of("f" * 32, "0" * 32, "9" * 32)
    assert first == second
    assert '"model_id": "widget-00"' in first and "IPY_MODEL_widget-01" in first and "IPY_MODEL_widget-02" in first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_committed_notebook_holds_no_environment_noise_or_errors(path):
    notebook = nbformat.read(path, as_version=4)
    for index, output in _outputs(notebook):
        assert output.output_type != "error", f"{path.name}: cell {index} stored an error"
        text = output.get("text", "") if output.output_type == "stream" else str(output.get("data", {}).get("text/plain", ""))
        match = NOISE.search(text)
        assert match is None, f"{path.name}: cell {index} stores {match.group(0)!r} (environment noise)"
        if output.output_type == "stream":
            assert output.name != "stderr", f"{path.name}: cell {index} wrote to stderr: {text[:120]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_notebook_gives_the_instructor_speaker_notes(path):
    notebook = nbformat.read(path, as_version=4)
    notes = [cell for cell in notebook.cells if cell.metadata.get("slideshow", {}).get("slide_type") == "notes"]
    assert len(notes) >= 2, f"{path.name}: {len(notes)} speaker-notes cells; key slides need notes for the instructor"
    assert all(cell.cell_type == "markdown" and cell.source.strip() for cell in notes)


LOCAL_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _broken_local_links(text: str, folder: Path) -> list[str]:
    targets = [t for t in LOCAL_LINK.findall(text) if not t.startswith(("http:", "https:", "#", "attachment:", "mailto:"))]
    return [t for t in targets if not (folder / t.split("#")[0]).exists()]


def test_every_local_link_and_picture_in_the_readmes_and_notebooks_exists():
    broken = {str(doc.relative_to(ROOT)): _broken_local_links(doc.read_text(encoding="utf-8"), doc.parent)
              for doc in (ROOT / "README.md", ROOT / "experiments" / "README.md")}
    for path in NOTEBOOKS:
        prose = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
        broken[str(path.relative_to(ROOT))] = _broken_local_links(prose, path.parent)
    assert {doc: links for doc, links in broken.items() if links} == {}
    assert _broken_local_links("[a](missing.md) [b](https://x.org) ![c](attachment:c.png)", ROOT) == ["missing.md"]


def test_every_notebook_runs_in_smoke_mode_in_under_a_minute_as_its_opening_says():
    import json

    smoke = json.loads((ROOT / "notebooks" / "timings.json").read_text(encoding="utf-8"))["smoke"]
    for path in NOTEBOOKS[1:]:  # 01 ... 07; the index opens with the table itself
        opening = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells[:2])
        assert "under a minute in smoke mode" in opening, f"{path.name}: its opening no longer says how long smoke mode takes"
        assert smoke[path.stem] < 60, f"{path.name} took {smoke[path.stem]:.0f} s in smoke mode, not under a minute"
