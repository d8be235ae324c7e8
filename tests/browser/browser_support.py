"""What the browser tests share: the project's folders, the notebooks they open and the Chromium they drive."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "tests" / "artifacts"  # git-ignored: screenshots of one notebook and one slide
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")


def course_notebooks() -> list[Path]:
    """Return the notebooks `make slides` exports (00_index ... 07_*), so a new notebook joins the suite by itself."""
    return load_build_slides().course_notebooks()


def find_chromium() -> str | None:
    """Return the path of the system's Chromium, or None; KD_CHROMIUM, when set, is the only place looked at."""
    override = os.environ.get("KD_CHROMIUM")
    for candidate in (override,) if override else CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def load_build_slides():
    """Import scripts/build_slides.py (a script, not a package) as the module `build_slides`."""
    if "build_slides" in sys.modules:
        return sys.modules["build_slides"]
    spec = importlib.util.spec_from_file_location("build_slides", ROOT / "scripts" / "build_slides.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_slides"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module
