"""Tag every notebook's cells for reveal.js and export each notebook as a slide deck into slides/.

    python scripts/build_slides.py                 # tag untagged cells, then export (what `make slides` does)
    python scripts/build_slides.py --tag-only      # only write the slide metadata into the notebooks
    python scripts/build_slides.py --retag         # recompute every cell's tag, also ones set by hand
    python scripts/build_slides.py notebooks/03_distillation_loss.ipynb

The rule, for a cell without ``metadata.slideshow.slide_type``:

* a markdown cell that opens with ``# `` or ``## `` starts a new slide;
* a markdown cell that opens with ``### `` starts a subslide (reveal.js: one step down);
* a code cell whose stored outputs hold an image starts a subslide, unless the cell just
  before it opened a slide or subslide and holds no image itself (a heading stays with the
  figure right under it). A course figure is about as tall as a
  projected slide, and reveal.js does not shrink what overflows, so each figure gets a screen
  of its own, with the code that drew it, instead of falling off the bottom of the prose before it;
* every other cell continues the current slide ("-").

A tag someone set by hand is kept (``--retag`` overrides). Notebooks are rewritten atomically
and only when a tag changed; stored outputs are kept as they are. The export does not execute
anything: the decks show the outputs stored by the last full run, so run `make run` first.
Decks load reveal.js from its CDN; for a projector without internet pass ``--reveal-prefix``
with the path or URL of a local copy of reveal.js (4.x, the version nbconvert's template loads).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SLIDES = ROOT / "slides"
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
STARTS = {"slide", "subslide"}


def heading_level(source: str) -> int:
    """Return the level of the Markdown heading a cell opens with (0 when it opens with something else)."""
    first_line = source.lstrip("\n").split("\n", 1)[0]
    hashes = len(first_line) - len(first_line.lstrip("#"))
    return hashes if 0 < hashes <= 6 and first_line[hashes:hashes + 1] == " " else 0


def has_image(cell) -> bool:
    """Return True when a code cell's stored outputs include an image."""
    return any(
        mime in output.get("data", {})
        for output in cell.get("outputs", [])
        for mime in IMAGE_TYPES
    )


def slide_type(cell, previous: str | None, previous_has_image: bool = False) -> str:
    """Return the reveal.js slide type for a cell, given the slide type of the cell before it (None for the first)."""
    if cell.cell_type == "markdown":
        level = heading_level(cell.source)
        if level in (1, 2):
            return "slide"
        if level == 3:
            return "subslide"
        return "-"
    if cell.cell_type == "code" and has_image(cell) and (previous not in STARTS or previous_has_image):
        return "subslide"
    return "-"


def existing_slide_type(cell) -> str | None:
    """Return the slide type already stored in a cell's metadata, or None."""
    return (cell.get("metadata", {}).get("slideshow") or {}).get("slide_type")


def tag_cells(cells: Iterable, retag: bool = False) -> int:
    """Set ``metadata.slideshow.slide_type`` on every cell lacking it (every cell with `retag`); return how many changed."""
    changed = 0
    previous, previous_has_image = None, False
    for cell in cells:
        current = existing_slide_type(cell)
        if current is None or retag:
            wanted = slide_type(cell, previous, previous_has_image)
            if wanted != current:
                slideshow = dict(cell.metadata.get("slideshow") or {})
                slideshow["slide_type"] = wanted
                cell.metadata["slideshow"] = slideshow
                changed += 1
            current = wanted
        previous, previous_has_image = current, cell.cell_type == "code" and has_image(cell)
    return changed


def tag_notebook(path: Path, retag: bool = False, attempts: int = 3) -> int:
    """Tag one notebook file in place; return the number of cells changed.

    The file is written to a temporary file and renamed over the original, so a crash never
    leaves half a notebook. If someone else rewrote the notebook while it was being tagged
    (same modification time and size check), the tagging starts again from their version.
    """
    for _ in range(attempts):
        before = path.stat()
        notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        changed = tag_cells(notebook.cells, retag=retag)
        if not changed:
            return 0
        handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".ipynb.tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                nbformat.write(notebook, file)
            shutil.copymode(path, temporary)
            after = path.stat()
            if (after.st_mtime_ns, after.st_size) != (before.st_mtime_ns, before.st_size):
                Path(temporary).unlink()
                continue
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return changed
    raise RuntimeError(f"{path} kept changing while it was being tagged; try again when nobody is writing it")


def course_notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """Return the notebooks of a folder in name order (checkpoint copies excluded)."""
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))


def jupyter_command() -> list[str]:
    """Return the command that runs `jupyter nbconvert` from this interpreter's environment."""
    jupyter = Path(sys.executable).with_name("jupyter")
    if jupyter.exists():
        return [str(jupyter), "nbconvert"]
    found = shutil.which("jupyter")
    return [found, "nbconvert"] if found else [sys.executable, "-m", "nbconvert"]


def export_slides(paths: Sequence[Path], output_dir: Path, reveal_prefix: str | None = None) -> list[Path]:
    """Export notebooks as reveal.js decks with `jupyter nbconvert --to slides` (no execution); return the HTML paths."""
    output_dir.mkdir(parents=True, exist_ok=True)
    command = [
        *jupyter_command(), "--to", "slides", "--output-dir", str(output_dir), "--no-prompt",
        "--SlidesExporter.reveal_scroll=True",  # a long cell scrolls instead of being cut off
        "--SlidesExporter.reveal_number=c/t",
    ]
    if reveal_prefix:
        command.append(f"--SlidesExporter.reveal_url_prefix={reveal_prefix}")
    subprocess.run([*command, *map(str, paths)], check=True)
    return [output_dir / f"{path.stem}.slides.html" for path in paths]


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to process (default: notebooks/*.ipynb)")
    parser.add_argument("--tag-only", action="store_true", help="write the slide metadata, do not export")
    parser.add_argument("--retag", action="store_true", help="recompute every cell's slide type, also hand-set ones")
    parser.add_argument("--out", type=Path, default=SLIDES, help="folder for the decks (default: slides/)")
    parser.add_argument("--reveal-prefix", help="URL or path of a local reveal.js 4.x, for offline projection")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or course_notebooks()
    if not paths:
        print(f"no notebooks found in {_shown(NOTEBOOKS)}", file=sys.stderr)
        return 1
    for path in paths:
        changed = tag_notebook(path, retag=args.retag)
        print(f"{_shown(path)}: {changed} cell(s) tagged" if changed else f"{_shown(path)}: tags up to date")
    if args.tag_only:
        return 0
    for deck in export_slides(paths, args.out.resolve(), args.reveal_prefix):
        print(f"wrote {_shown(deck)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
