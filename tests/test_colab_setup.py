"""The Colab set-up cell: in step everywhere, silent inside the project, right on Colab, clear offline."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import sync_notebooks  # noqa: E402

NOTEBOOKS = sync_notebooks.notebook_paths()


def setup_cell(path: Path):
    cells = nbformat.read(path, as_version=4).cells
    tagged = [cell for cell in cells if sync_notebooks.SETUP_TAG in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} set-up cells; run scripts/sync_notebooks.py"
    first_code = next(cell for cell in cells if cell.cell_type == "code")
    assert first_code is tagged[0], f"{path.name}: the set-up cell is not the first code cell"
    return tagged[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_starts_with_the_current_setup_cell(path):
    cell = setup_cell(path)
    assert cell.source == sync_notebooks.setup_source(), f"{path.name}: stale set-up cell; run scripts/sync_notebooks.py"
    assert cell.metadata["slideshow"]["slide_type"] == "skip"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_pictures_are_embedded_and_match_images_folder(path):
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "markdown":
            continue
        assert "../images/" not in cell.source, f"{path.name}: a ../images/ link breaks on Colab and GitHub"
        for _, name in sync_notebooks.IMAGE_LINK.findall(cell.source):
            stored = cell.attachments[name]["image/png"]
            expected = sync_notebooks.base64.b64encode((ROOT / "images" / name).read_bytes()).decode()
            assert stored == expected, f"{path.name}: {name} differs from images/{name}; run scripts/sync_notebooks.py"


def test_readme_and_index_carry_a_colab_badge_for_every_notebook():
    readme = (ROOT / "README.md").read_text()
    index = "".join(cell.source for cell in nbformat.read(ROOT / "notebooks" / "00_index.ipynb", as_version=4).cells)
    for path in NOTEBOOKS:
        url = sync_notebooks.colab_url(path)
        assert f"({url})" in readme, f"README lacks the Colab badge of {path.name}"
        assert f"({url})" in index, f"00_index lacks the Colab badge of {path.name}"
    assert sync_notebooks.with_badges(readme, prefix="notebooks/") == readme, "README badges are stale"


class Recorder:
    """A stand-in for subprocess.run that records each command and answers with a given return code."""

    def __init__(self, returncode: int = 0, stderr: str = ""):
        self.commands, self.returncode, self.stderr = [], returncode, stderr

    def __call__(self, command, **kwargs):
        self.commands.append(list(command))
        return subprocess.CompletedProcess(command, self.returncode, "", self.stderr)


def run_setup_cell(monkeypatch, recorder: Recorder, kd_utils_installed: bool, colab: bool) -> list[str]:
    """Execute the set-up cell's source with stand-ins; return the folders it changed into."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "kd_utils" and not kd_utils_installed
                        else real_find_spec(name, *args))
    monkeypatch.setattr(subprocess, "run", recorder)
    visited: list[str] = []
    monkeypatch.setattr(os, "chdir", visited.append)
    monkeypatch.setattr(sys, "path", list(sys.path))
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(sync_notebooks.setup_source(), "setup-cell", "exec"), {})
    return visited


def test_setup_cell_does_nothing_inside_the_project(monkeypatch):
    recorder = Recorder()
    visited = run_setup_cell(monkeypatch, recorder, kd_utils_installed=True, colab=False)
    assert recorder.commands == [] and visited == []


def test_setup_cell_on_colab_clones_and_installs_without_touching_torch(monkeypatch):
    recorder = Recorder()
    visited = run_setup_cell(monkeypatch, recorder, kd_utils_installed=False, colab=True)
    name = sync_notebooks.repository().rsplit("/", 1)[-1]
    project = f"/content/{name}"
    assert recorder.commands[0] == ["git", "clone", "--depth", "1", sync_notebooks.repository(), project]
    assert recorder.commands[1] == [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "-e", project]
    installed = [word for command in recorder.commands[1:] for word in command[4:]]
    assert "torch" not in installed and "torchvision" not in installed, "the host's torch must be kept"
    assert visited == [f"{project}/notebooks"], "the notebook must run from the project's notebooks/ folder"
    assert sys.path[0] == project


def test_setup_cell_offline_says_what_failed_and_what_to_do(monkeypatch):
    recorder = Recorder(returncode=128, stderr="fatal: unable to access: Could not resolve host: github.com")
    with pytest.raises(RuntimeError) as error:
        run_setup_cell(monkeypatch, recorder, kd_utils_installed=False, colab=True)
    message = str(error.value)
    assert "git clone" in message and "Could not resolve host" in message
    assert "Connect to the internet" in message and "make setup" in message
    assert len(recorder.commands) == 1, "nothing runs after the step that failed"
