"""Keep what every notebook must carry in step with its one source: the Colab set-up cell, the pictures, the badges.

- The first code cell of every notebook is the set-up cell below (tagged `colab-setup`, skipped in slides): inside
  this project it does nothing; on Colab or in a bare Jupyter it fetches the course and installs kd_utils without
  touching the host's torch.
- Pictures from `images/` are embedded in the markdown cells as attachments, so they show on GitHub, Colab, Lab and
  in the slides alike (a `../images/…` link breaks everywhere but a local checkout).
- The "Open in Colab" badges of the README and of 00_index are written between `colab-badges` markers.
- A code cell whose whole output is rendered prose (`display(Markdown(...))`) keeps its code folded in JupyterLab
  (`metadata.jupyter.source_hidden`): the learner reads the prose, and unfolds the f-string to see where each number
  comes from. Run it after executing the notebooks (`make run` does).

The repository address lives in one place, `[project.urls] Repository` in pyproject.toml; after changing it (a
fork, a new home) run `.venv/bin/python scripts/sync_notebooks.py`. `make images` runs it after redrawing.
tests/test_colab_setup.py fails when a notebook, the README or the index is out of step.
"""

from __future__ import annotations

import base64
import re
import sys
import tomllib
from pathlib import Path

import nbformat

from kd_utils.config import atomic_write

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
IMAGES = ROOT / "images"
SETUP_TAG = "colab-setup"
BADGE_START, BADGE_END = "<!-- colab-badges: written by scripts/sync_notebooks.py -->", "<!-- /colab-badges -->"
IMAGE_LINK = re.compile(r"!\[([^\]]*)\]\((?:\.\./images/|attachment:)([\w.-]+\.png)\)")

SETUP_SOURCE = '''\
# Set-up for Colab or a bare Jupyter. Inside the course's own environment this cell does nothing.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("kd_utils") is None:
    REPOSITORY = "{repository}"
    project = os.path.join("/content" if "google.colab" in sys.modules else os.path.expanduser("~"), "{name}")
    steps = [] if os.path.isdir(project) else [["git", "clone", "--depth", "1", REPOSITORY, project]]
    # --no-deps keeps the host's torch and torchvision; only packages the host lacks are added.
    steps.append([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "-e", project])
    missing = [name for name in ("torch", "torchvision", "tqdm", "matplotlib", "ipywidgets", "onnx", "onnxruntime", "onnxscript")
               if importlib.util.find_spec(name) is None]
    steps += [[sys.executable, "-m", "pip", "install", "--quiet", *missing]] if missing else []
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"Set-up could not run `{{' '.join(step)}}`: {{result.stderr.strip()[-300:]}}. "
                               f"Connect to the internet and run this cell again, or clone {{REPOSITORY}} yourself, "
                               "run `make setup` there and open the notebooks from its notebooks/ folder.")
    sys.path.insert(0, project)
    os.chdir(os.path.join(project, "notebooks"))
'''


def repository() -> str:
    """Return the course's public repository address, from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    try:
        return project["urls"]["Repository"].rstrip("/")
    except KeyError:
        sys.exit("pyproject.toml has no [project.urls] Repository = \"https://github.com/OWNER/NAME\": add it")


def setup_source(repo: str | None = None) -> str:
    """Return the source of the set-up cell for the given repository address."""
    repo = repo or repository()
    return SETUP_SOURCE.format(repository=repo, name=repo.rsplit("/", 1)[-1]).rstrip("\n")


def notebook_paths() -> list[Path]:
    """Return the course notebooks, 00 to the last."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def colab_url(notebook: Path, repo: str | None = None) -> str:
    """Return the address that opens a notebook of the repository's main branch in Colab."""
    repo = repo or repository()
    return f"https://colab.research.google.com/github/{repo.removeprefix('https://github.com/')}/blob/main/notebooks/{notebook.name}"


def badges(prefix: str = "notebooks/") -> str:
    """Return the badge table: one row per notebook, its link and its Open-in-Colab badge."""
    rows = ["| notebook | open in Colab |", "|---|---|"]
    for path in notebook_paths():
        heading = nbformat.read(path, as_version=4).cells[0].source.splitlines()[0].lstrip("# ")
        title = heading if heading[:2] == path.name[:2] else f"{path.name[:2]} · {heading}"
        rows.append(f"| [{title}]({prefix}{path.name}) | [![Open In Colab](https://colab.research.google.com/assets/"
                    f"colab-badge.svg)]({colab_url(path)}) |")
    return "\n".join([BADGE_START, *rows, BADGE_END])


def with_badges(text: str, prefix: str) -> str:
    """Return text with its badge block replaced (or appended if it has none)."""
    block = badges(prefix)
    if BADGE_START in text:
        before, rest = text.split(BADGE_START, 1)
        return before + block + rest.split(BADGE_END, 1)[1]
    return text.rstrip("\n") + "\n\n" + block + "\n"


def renders_prose_only(cell) -> bool:
    """Whether a code cell's stored outputs are rendered Markdown and nothing else (no print, no figure)."""
    outputs = cell.get("outputs", [])
    return cell.cell_type == "code" and bool(outputs) and all(
        output.output_type in ("display_data", "execute_result") and "text/markdown" in output.get("data", {})
        and set(output["data"]) <= {"text/markdown", "text/plain"} for output in outputs)


def sync_notebook(path: Path) -> bool:
    """Bring one notebook in step; return True if it changed."""
    notebook = nbformat.read(path, as_version=4)
    before = nbformat.writes(notebook)
    cells = [cell for cell in notebook.cells if SETUP_TAG not in cell.metadata.get("tags", [])]
    setup = next((cell for cell in notebook.cells if SETUP_TAG in cell.metadata.get("tags", [])), None)
    if setup is None:
        setup = nbformat.v4.new_code_cell()
    setup.source = setup_source()
    setup.metadata.update({"tags": [SETUP_TAG], "slideshow": {"slide_type": "skip"}})
    # right under the opening slide's prose and speaker notes (where a reader starts), before any code that needs it
    after_intro = 1
    while after_intro < len(cells) and cells[after_intro].cell_type == "markdown" and (
            cells[after_intro].metadata.get("slideshow") or {}).get("slide_type") != "slide":
        after_intro += 1
    first_code = next(i for i, cell in enumerate(cells) if cell.cell_type == "code")
    cells.insert(min(first_code, after_intro), setup)
    for cell in cells:
        if cell.cell_type != "markdown":
            continue
        names = [name for _, name in IMAGE_LINK.findall(cell.source)]
        if names:
            cell.source = IMAGE_LINK.sub(r"![\1](attachment:\2)", cell.source)
            cell["attachments"] = {name: {"image/png": base64.b64encode((IMAGES / name).read_bytes()).decode()}
                                   for name in names}
    for cell in cells:
        if renders_prose_only(cell):
            cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
    if path.name.startswith("00_"):
        index = next(i for i, cell in enumerate(cells) if cell.cell_type == "markdown" and "## The notebooks" in cell.source)
        cells[index].source = with_badges(cells[index].source, prefix="")
    notebook.cells = cells
    after = nbformat.writes(notebook)
    if after != before:
        nbformat.validate(notebook)
        with atomic_write(path, "w", encoding="utf-8") as file:
            file.write(after + "\n" if not after.endswith("\n") else after)
    return after != before


def main() -> None:
    changed = [path.name for path in notebook_paths() if sync_notebook(path)]
    readme = ROOT / "README.md"
    text = readme.read_text()
    if with_badges(text, prefix="notebooks/") != text:
        with atomic_write(readme, "w", encoding="utf-8") as file:
            file.write(with_badges(text, prefix="notebooks/"))
        changed.append("README.md")
    print("in step already" if not changed else "updated: " + ", ".join(changed))


if __name__ == "__main__":
    main()
