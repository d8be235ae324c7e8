"""Export each notebook as a reveal.js slide deck that starts offline; tag the cells for reveal.js.

    python scripts/build_slides.py                 # export, untagged cells tagged in the deck only (`make slides`)
    python scripts/build_slides.py --tag-only      # write the slide metadata of untagged cells into the notebooks
    python scripts/build_slides.py --tag-only --retag  # recompute every cell's tag, also ones set by hand
    python scripts/build_slides.py --no-tag        # export the notebooks exactly as they are tagged
    python scripts/build_slides.py --install-assets  # only fetch reveal.js, require.js, MathJax... (what set-up does)
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

Fitting (``--fit REPORT``, what `make fit-slides` runs after tests/browser/deck_check.py measured every
cell of every deck in Chromium): a cell that continues a slide and would push it past the 1280x720
screen starts a subslide instead; see `plan_breaks`.

A tag someone set by hand is kept (``--retag`` overrides). Building the decks never writes a notebook:
it tags a copy in memory, so `make slides` on a clean tree leaves the tree clean (only slides/ changes).
Only ``--tag-only`` and ``--fit`` rewrite notebooks, atomically and only when a tag changed; stored
outputs are kept as they are. The export does not execute anything: the decks show the outputs stored
by the last full run, so run `make run` first.

Offline: nbconvert's reveal template loads reveal.js, require.js, jQuery, MathJax, Mermaid and the
widget renderer from CDNs, so a deck opened without internet stays one long page ("require is not
defined", raw LaTeX). Here every one of them comes from ``lib/`` beside the decks: set-up fetches
pinned npm packages into ``slides/lib/`` once (``--install-assets``; `npm pack`, no node_modules
tree), and an export into another folder copies that folder next to its decks. The Mermaid import
is dropped (no notebook draws Mermaid diagrams) and markdown images are embedded, so the folder of
decks is all an instructor needs: open ``slides/03_distillation_loss.slides.html`` from a USB stick.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kd_utils.config import atomic_write  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"
SLIDES = ROOT / "slides"
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
STARTS = {"slide", "subslide"}
LIB = "lib"  # the assets' folder inside a folder of decks; decks refer to it by this relative path


@dataclass(frozen=True)
class Asset:
    """One npm package a deck loads, and the paths inside it that the deck needs."""

    name: str  # the folder under lib/
    spec: str  # what `npm pack` fetches, pinned
    keep: tuple[str, ...]  # files or folders of the package to install (the rest is source, tests, maps)
    entry: str  # the file the deck loads, relative to the asset's folder


ASSETS = (
    # reveal.js 4.x: the API nbconvert's template calls (Reveal.initialize, the notes plugin) is 4.x's.
    Asset("reveal.js", "reveal.js@4.6.1",
          ("package.json", "LICENSE", "dist/reveal.js", "dist/reveal.css", "dist/theme", "plugin/notes"),
          "dist/reveal.js"),
    Asset("require.js", "requirejs@2.3.8", ("package.json", "require.js"), "require.js"),
    Asset("jquery", "jquery@3.7.1", ("package.json", "LICENSE.txt", "dist/jquery.min.js"), "dist/jquery.min.js"),
    # MathJax 2, not 3: the template calls MathJax.Hub (the 2.x API). CommonHTML output with the TeX fonts only.
    Asset("mathjax", "mathjax@2.7.9",
          ("package.json", "LICENSE", "MathJax.js", "config/TeX-AMS_CHTML-full.js", "config/Safe.js", "config/local",
           "extensions", "jax/element", "jax/input", "jax/output/CommonHTML", "jax/output/PreviewHTML",
           "fonts/HTML-CSS/TeX/woff", "localization"),
          "MathJax.js"),
    # Renders the widget state a notebook stores (02's temperature slider) as static widgets.
    Asset("html-manager", "@jupyter-widgets/html-manager@1.0.15",
          ("package.json", "dist/embed-amd.js", "dist/*.woff", "dist/*.woff2", "dist/*.ttf", "dist/*.eot", "dist/*.svg"),
          "dist/embed-amd.js"),
)
STAMP = ".kd-asset.json"  # written last into each installed asset: what was installed


class AssetError(RuntimeError):
    """The offline slide assets are missing and could not be fetched."""


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


class _Rewritten(Exception):
    """Someone else wrote the notebook while it was being tagged."""


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
        try:
            with atomic_write(path, "w", encoding="utf-8") as file:
                nbformat.write(notebook, file)
                after = path.stat()
                if (after.st_mtime_ns, after.st_size) != (before.st_mtime_ns, before.st_size):
                    raise _Rewritten  # leaves their version in place and no temporary file behind
        except _Rewritten:
            continue
        return changed
    raise RuntimeError(f"{path} kept changing while it was being tagged; try again when nobody is writing it")


def course_notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """Return the notebooks of a folder in name order (checkpoint copies excluded)."""
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))


def expected_slide_count(notebook) -> int:
    """Return how many slides reveal.js counts in the deck of a notebook (its slide counter's total).

    nbconvert opens a horizontal <section> per 'slide' cell and a vertical <section> inside it per
    'slide' or 'subslide' cell, and reveal.js counts the innermost sections (Reveal.getTotalSlides()),
    so every slide and subslide cell is one slide. nbconvert also turns the first cell that is neither
    'notes' nor 'skip' into a slide whatever its tag, which adds one when that cell was not a start.
    """
    tags = [existing_slide_type(cell) or "-" for cell in notebook.cells]
    first = next((tag for tag in tags if tag not in {"notes", "skip"}), None)
    if first is None:
        return 0
    return sum(tag in STARTS for tag in tags) + (first not in STARTS)


# ----------------------------------------------------------------------------- fitting slides to the screen

SCREEN_HEIGHT = 720  # px: the 1280x720 screen tests/browser/deck_check.py measures the decks on
HEADING_KEPT = 0.25  # a slide's first cell shorter than this share of a screen is a heading: never left alone


def _fitted(cell) -> bool:
    """Return True for a subslide that fitting started (``slideshow.fitted``), not one an author set."""
    return bool((cell.get("metadata", {}).get("slideshow") or {}).get("fitted"))


def plan_breaks(notebook, slides: Sequence[dict], limit: float = SCREEN_HEIGHT, refit: bool = False) -> list[str]:
    """Return the ids of the cells that should start a subslide so that no slide runs past `limit` px.

    `slides` is what tests/browser/deck_check.py measured in Chromium: per slide its height and, per cell
    in it, the cell's id, top and height (px on screen). Walking each slide's cells in order, a cell that
    continues the slide ('-') and would push it past `limit` starts a subslide instead, unless the slide
    so far is only a short heading (it stays with what follows). One cell taller than the screen stays a
    scrolling slide of its own: a tag cannot split a cell. Tags an author set are kept. With `refit`, the
    subslides an earlier fitting started count as '-', so the plan is made afresh (a slide whose content
    shrank joins up again); without it they stay, and the plan lists only the breaks still missing.
    """
    cells = {cell.get("id"): cell for cell in notebook.cells}
    continues = {key: (existing_slide_type(cell) or "-") == "-" or (refit and _fitted(cell)) for key, cell in cells.items()}
    groups: list[dict] = []  # the slides as they would be without the fitted subslides (refit) or as they are
    for slide in slides:
        measured = slide.get("cells", [])
        if not measured:
            continue
        gaps = [0] + [cell["top"] - (above["top"] + above["height"]) for above, cell in zip(measured, measured[1:])]
        rows = [(cell["id"], cell["height"], gap) for cell, gap in zip(measured, gaps)]
        bottom = max(0, slide["height"] - max(cell["top"] + cell["height"] for cell in measured))
        if groups and refit and _fitted(cells.get(measured[0]["id"], {})):
            groups[-1]["rows"] += rows
        else:
            groups.append({"start": measured[0]["top"], "bottom": bottom, "rows": rows})
    breaks = []
    for group in groups:
        (_, first, _), *rest = group["rows"]
        used, count = group["start"] + first, 1
        for key, height, gap in rest:
            alone_heading = count == 1 and used - group["start"] < HEADING_KEPT * SCREEN_HEIGHT
            if continues.get(key, False) and used + gap + height + group["bottom"] > limit and not alone_heading:
                breaks.append(key)
                used, count = group["start"] + height, 1
            else:
                used, count = used + gap + height, count + 1
    return breaks


def fit_notebook(path: Path, slides: Sequence[dict]) -> int:
    """Refit a notebook's subslides to `plan_breaks(..., refit=True)`, atomically; return how many cells changed.

    A cell fitting starts a subslide at is tagged ``{"slide_type": "subslide", "fitted": true}``; a fitted
    subslide that is no longer needed goes back to '-'. Tags an author set are never touched.
    """
    notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    breaks = set(plan_breaks(notebook, slides, refit=True))
    changed = 0
    for cell in notebook.cells:
        if cell.get("id") in breaks and not _fitted(cell):
            cell.metadata["slideshow"] = dict(cell.metadata.get("slideshow") or {}, slide_type="subslide", fitted=True)
        elif _fitted(cell) and cell.get("id") not in breaks:
            cell.metadata["slideshow"] = {k: v for k, v in cell.metadata["slideshow"].items() if k != "fitted"} | {
                "slide_type": "-"}
        else:
            continue
        changed += 1
    if changed:
        with atomic_write(path, "w", encoding="utf-8") as file:
            nbformat.write(notebook, file)
    return changed


# ----------------------------------------------------------------------------- offline assets


def asset_stamp(asset: Asset) -> dict:
    """Return what an installed asset's stamp file records (a change of version or of kept files reinstalls it)."""
    return {"spec": asset.spec, "keep": list(asset.keep)}


def _installed(folder: Path, asset: Asset) -> bool:
    try:
        recorded = json.loads((folder / asset.name / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return recorded == asset_stamp(asset)


def missing_assets(folder: Path = SLIDES / LIB) -> list[Asset]:
    """Return the assets not installed (or installed at another version) in `folder`."""
    return [asset for asset in ASSETS if not _installed(folder, asset)]


def _kept(relative: str, keep: Iterable[str]) -> bool:
    return any(relative == k or relative.startswith(k + "/") or ("*" in k and fnmatchcase(relative, k)) for k in keep)


def _unpack(tarball: Path, asset: Asset, destination: Path) -> int:
    """Extract the kept files of an npm tarball (rooted at package/) into `destination`; return how many."""
    count, matched = 0, set()
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            relative = member.name.removeprefix("package/")
            if not member.isfile() or relative == member.name or ".." in Path(relative).parts:
                continue
            if not _kept(relative, asset.keep):
                continue
            matched.update(k for k in asset.keep if _kept(relative, [k]))
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.extractfile(member) as source, open(target, "wb") as file:
                shutil.copyfileobj(source, file)
            count += 1
    unmatched = sorted(set(asset.keep) - matched)
    if unmatched:
        raise AssetError(f"{asset.spec} has no {', '.join(unmatched)}: update ASSETS in scripts/build_slides.py")
    return count


def install_assets(folder: Path = SLIDES / LIB, npm: str | None = None) -> list[str]:
    """Fetch the missing slide assets with `npm pack` into `folder`; return the specs installed (none when up to date)."""
    missing = missing_assets(folder)
    if not missing:
        return []
    npm = npm or shutil.which("npm")
    if not npm:
        raise AssetError("the offline slide assets (reveal.js, MathJax, ...) come from the npm registry but `npm` was "
                         "not found: install it (`apt-get install npm` or Node.js) and run `make setup` again")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".assets-", dir=folder) as temporary:
        result = subprocess.run([npm, "pack", "--silent", "--pack-destination", temporary, *(a.spec for a in missing)],
                                capture_output=True, text=True, timeout=600)
        tarballs = result.stdout.split()
        if result.returncode != 0 or len(tarballs) != len(missing):
            reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise AssetError(f"`npm pack` could not fetch {', '.join(a.spec for a in missing)} ({reason}): "
                             "run `make setup` where the npm registry can be reached, then `make slides` works offline")
        for asset, tarball in zip(missing, tarballs):
            staging = Path(temporary) / asset.name
            _unpack(Path(temporary) / tarball, asset, staging)
            (staging / STAMP).write_text(json.dumps(asset_stamp(asset)), encoding="utf-8")
            shutil.rmtree(folder / asset.name, ignore_errors=True)
            os.replace(staging, folder / asset.name)
    return [asset.spec for asset in missing]


def _provide_assets(output_dir: Path, source: Path, link: bool) -> None:
    """Make `output_dir/lib` hold the assets: install them into `source`, then copy (or link) them over."""
    install_assets(source)
    target = output_dir / LIB
    if target.resolve() == source.resolve() or not missing_assets(target):
        return
    if target.is_symlink() or target.is_file():
        target.unlink()
    else:
        shutil.rmtree(target, ignore_errors=True)
    if link:
        target.symlink_to(source.resolve(), target_is_directory=True)
    else:
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(".assets-*"))


# ----------------------------------------------------------------------------- export

# nbconvert's reveal template, with five changes: no Mermaid import (the one CDN load it offers no setting
# for; no notebook draws Mermaid diagrams); MathJax's line breaking loaded at start-up; headings keep their
# case; code and text outputs in a smaller font that wraps; and a slide taller than the screen is made scrollable
# also on the slide a deck opens with (the template does it only on 'slidechanged', so the title slide was cut off).
OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
{{ super() }}
<script type="text/x-mathjax-config">
// Load the line-breaking code up front: autoloaded while slides change, MathJax 2 may show
// "[Math Processing Error]" (CommonHTML can't autoload file 'multiline') in place of a long formula.
MathJax.Hub.Register.StartupHook("CommonHTML Jax Ready", function () {
  MathJax.Ajax.Require("[MathJax]/jax/output/CommonHTML/autoload/multiline.js");
});
</script>
{%- endblock html_head_js_mathjax -%}
{%- block html_head_css -%}
{{ super() }}
<style>
/* the white theme capitalises headings, which turns "α convention" into "Α CONVENTION" */
.reveal .slides h1, .reveal .slides h2, .reveal .slides h3, .reveal .slides h4 { text-transform: none; }
/* code and printed tables: at the theme's 19 px a 960 px slide holds 80 characters and cut the rest of a
   120-character line off; at 14 px about 105 fit, and a longer line wraps instead of disappearing */
.reveal .slides .jp-InputArea-editor pre, .reveal .slides .jp-OutputArea-output pre {
  font-size: 14px; line-height: 1.3; white-space: pre-wrap; overflow-wrap: break-word;
}
/* tables (a scorecard has 11 columns): at the theme's size they ran off the right edge, a row as tall as a fifth
   of the screen */
.reveal .slides .jp-RenderedHTMLCommon table { font-size: 15px; line-height: 1.25; }
.reveal .slides .jp-RenderedHTMLCommon th, .reveal .slides .jp-RenderedHTMLCommon td { padding: 3px 8px; }
.reveal .slides .jp-OutputArea-output table { font-size: 13px; }  /* a table a cell wrote is the widest */
</style>
{%- endblock html_head_css -%}
{%- block footer_js -%}
{{ super() }}
{%- if resources.reveal.scroll %}
<script>
require(["{{ resources.reveal.url_prefix }}/dist/reveal.js"], function (Reveal) {
  function scrollTallSlides() {
    var limit = $('.reveal').height() * 0.95;
    $('section.present').find('section')
      .filter(function () { return $(this).height() > limit; })
      .css('height', 'calc(95vh)').css('overflow-y', 'scroll').css('margin-top', '20px');
  }
  if (Reveal.isReady()) { scrollTallSlides(); } else { Reveal.on('ready', scrollTallSlides); }
});
</script>
{%- endif %}
{%- endblock footer_js -%}
"""


def asset_url(name: str, lib: str = LIB) -> str:
    """Return the URL, relative to a deck, of an asset's entry file (e.g. `lib/mathjax/MathJax.js`)."""
    asset = next((a for a in ASSETS if a.name == name), None)
    if asset is None:
        raise KeyError(f"no slide asset named {name!r}; the assets are {', '.join(a.name for a in ASSETS)}")
    return f"{lib}/{asset.name}/{asset.entry}"


def writes_prose_only(cell) -> bool:
    """Return True for a code cell whose every output is rendered Markdown (prose or a table made from variables)."""
    outputs = cell.get("outputs", [])
    return cell.cell_type == "code" and bool(outputs) and all("text/markdown" in o.get("data", {}) for o in outputs)


def _prose_only_preprocessor():
    from nbconvert.preprocessors import Preprocessor

    class ProseOnSlides(Preprocessor):
        """On a slide a cell that writes prose shows the prose, not the code that wrote it (the notebook shows both)."""

        def preprocess_cell(self, cell, resources, index):
            if writes_prose_only(cell):
                cell.metadata["transient"] = {"remove_source": True}  # what nbconvert's templates read
            return cell, resources

    return ProseOnSlides


def slides_exporter(reveal_prefix: str | None = None):
    """Return nbconvert's SlidesExporter set to load every script from lib/ beside the deck."""
    from jinja2 import DictLoader
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    config = Config()
    exporter_config = config.SlidesExporter
    exporter_config.reveal_url_prefix = reveal_prefix or f"{LIB}/reveal.js"
    exporter_config.require_js_url = asset_url("require.js")
    exporter_config.jquery_url = asset_url("jquery")
    exporter_config.mathjax_url = asset_url("mathjax") + "?config=TeX-AMS_CHTML-full,Safe"
    exporter_config.widget_renderer_url = asset_url("html-manager")
    exporter_config.reveal_theme = "white"  # nbconvert's default, "simple", imports its fonts from Google
    exporter_config.reveal_scroll = True  # a long cell scrolls instead of being cut off
    exporter_config.reveal_number = "c/t"
    exporter_config.embed_images = True  # markdown images travel inside the deck
    exporter_config.exclude_input_prompt = True
    exporter_config.exclude_output_prompt = True
    exporter = SlidesExporter(config=config, template_file="kd_offline_reveal.html.j2",
                              extra_loaders=[DictLoader({"kd_offline_reveal.html.j2": OFFLINE_TEMPLATE})])
    exporter.register_preprocessor(_prose_only_preprocessor(), enabled=True)
    return exporter


def export_slides(paths: Sequence[Path], output_dir: Path, reveal_prefix: str | None = None,
                  assets: Path = SLIDES / LIB, link_assets: bool = False, tag: bool = False,
                  retag: bool = False) -> list[Path]:
    """Export notebooks as reveal.js decks that start offline (no execution); return the HTML paths.

    The decks load their scripts from `output_dir/lib`, filled from `assets` (fetched there first when
    missing): copied, or symlinked with `link_assets` (tests do that to save the copy). With `tag`, cells
    without a slide type get one by the rule (`tag_cells`, all of them with `retag`) in the copy that is
    exported; the notebook files are only read.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    _provide_assets(output_dir, assets, link_assets)
    exporter = slides_exporter(reveal_prefix)
    decks = []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        if tag:
            tag_cells(notebook.cells, retag=retag)
        body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": path.stem,
                                                                                 "path": str(path.parent)}})
        deck = output_dir / f"{path.stem}.slides.html"
        with atomic_write(deck, "w", encoding="utf-8") as file:
            file.write(body)
        decks.append(deck)
    return decks


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to process (default: notebooks/*.ipynb)")
    parser.add_argument("--tag-only", action="store_true",
                        help="write the slide metadata into the notebooks, do not export (the only export-free rewrite)")
    parser.add_argument("--retag", action="store_true", help="recompute every cell's slide type, also hand-set ones")
    parser.add_argument("--out", type=Path, default=SLIDES, help="folder for the decks (default: slides/)")
    parser.add_argument("--reveal-prefix", help="URL or path of another reveal.js 4.x (default: lib/reveal.js)")
    parser.add_argument("--install-assets", action="store_true",
                        help="only fetch the offline assets (what set-up does; skipped when present)")
    parser.add_argument("--no-tag", action="store_true",
                        help="export the notebooks exactly as they are tagged (no tags added, even in the decks)")
    parser.add_argument("--fit", type=Path, metavar="REPORT",
                        help="start a subslide wherever a slide runs past the screen, as measured in REPORT "
                             "(tests/browser/deck_check.py's; `make fit-slides` does both), then stop")
    parser.add_argument("--assets", type=Path, default=SLIDES / LIB,
                        help="folder the offline assets are installed in and copied from (default: slides/lib/)")
    args = parser.parse_args(argv)
    try:
        if args.install_assets:
            installed = install_assets(args.assets)
            print(f"slide assets: installed {', '.join(installed)} into {_shown(args.assets.resolve())}/" if installed
                  else f"slide assets: up to date in {_shown(args.assets.resolve())}/")
            return 0
        paths = [p.resolve() for p in args.notebooks] or course_notebooks()
        if not paths:
            print(f"no notebooks found in {_shown(NOTEBOOKS)}", file=sys.stderr)
            return 1
        if args.fit:
            reports = json.loads(args.fit.read_text(encoding="utf-8"))
            for path in paths:
                if "slides" not in reports.get(path.name, {}):
                    print(f"error: {args.fit} has no measured slides of {path.name}: measure it with "
                          "tests/browser/deck_check.py first (`make fit-slides` does)", file=sys.stderr)
                    return 1
                changed = fit_notebook(path, reports[path.name]["slides"])
                print(f"{_shown(path)}: {changed} subslide(s) started or joined up" if changed
                      else f"{_shown(path)}: every slide fits")
            return 0
        if args.tag_only:
            for path in paths:
                changed = tag_notebook(path, retag=args.retag)
                print(f"{_shown(path)}: {changed} cell(s) tagged" if changed else f"{_shown(path)}: tags up to date")
            return 0
        untagged = [] if args.no_tag else [path for path in paths if tag_cells(
            nbformat.read(path, as_version=4).cells, retag=args.retag)]
        for path in untagged:  # the deck gets the tags; the notebook keeps what it has
            print(f"{_shown(path)}: cells without a slide type are tagged in its deck only; "
                  "`python scripts/build_slides.py --tag-only` writes the tags into the notebook")
        for deck in export_slides(paths, args.out.resolve(), args.reveal_prefix, assets=args.assets.resolve(),
                                  tag=not args.no_tag, retag=args.retag):
            print(f"wrote {_shown(deck)}")
    except AssetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
