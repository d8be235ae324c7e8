"""What the browser tests share: the project's folders and the notebooks they open."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "tests" / "artifacts"  # git-ignored: screenshots of one notebook and one slide


def course_notebooks() -> list[Path]:
    """Return every numbered notebook (00_index ... 07_*), so a new notebook joins the suite by its name alone."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def load_build_slides():
    """Import scripts/build_slides.py (a script, not a package) as the module `build_slides`."""
    if "build_slides" in sys.modules:
        return sys.modules["build_slides"]
    spec = importlib.util.spec_from_file_location("build_slides", ROOT / "scripts" / "build_slides.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_slides"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module
