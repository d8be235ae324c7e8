"""Export every course notebook as a deck and visit each one in headless Chromium, offline; write what was seen.

    python tests/browser/deck_check.py --chromium /usr/bin/chromium --out DIR --report DIR/report.json NOTEBOOK...
    python scripts/build_slides.py --fit DIR/report.json   # then: a subslide wherever a slide runs past the screen

tests/browser starts this beside the JupyterLab tests (it uses the CPU the kernels leave idle) and
test_slide_decks.py asserts on the report. The export is `scripts/build_slides.py --no-tag` (what
`make slides` does, without rewriting the notebooks' tags); each deck is opened from file:// with every
non-local request aborted, so what the report says holds offline.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from browser_support import ARTIFACTS, find_chromium, load_build_slides

VIEWPORT = {"width": 1280, "height": 720}
START_TIMEOUT_S = 20  # a deck opens in about a second from file://; one that never starts fails
VISIT_TIMEOUT_S = 120  # a deck that never finishes typesetting fails instead of hanging the suite
SCREENSHOT_DECK = "02"  # the deck with the most formulas: its screenshot shows typeset math

build_slides = load_build_slides()

VISIT = """async ({revealUrl}) => {
  // The text a reader sees in the prose: TeX inside <script type="math/tex"> and code cells does not count.
  const readProse = () => {
    const skip = node => node.closest(
        'script, code, pre, .MathJax_CHTML, .MJX_Assistive_MathML, .MathJax_Preview, .jp-InputArea');
    const texts = [];
    for (const prose of document.querySelectorAll('.jp-RenderedMarkdown, .jp-RenderedHTMLCommon')) {
      const walker = document.createTreeWalker(prose, NodeFilter.SHOW_TEXT);
      for (let text = walker.nextNode(); text; text = walker.nextNode()) {
        if (!skip(text.parentElement) && text.textContent.trim()) texts.push(text.textContent.trim());
      }
    }
    return texts;
  };
  const Reveal = await new Promise((resolve, reject) => require([revealUrl], resolve, reject));
  const counter = document.querySelector('.slide-number');
  const shown = counter ? counter.textContent.replace(/\\s+/g, '') : null;
  if (typeof MathJax === 'undefined') return {error: 'MathJax did not load'};
  // After MathJax's start-up (its first typeset pass), then after the Typeset the deck queued itself.
  // The hook must return nothing: MathJax waits for a callback a hook returns, and would deadlock.
  await new Promise(resolve => MathJax.Hub.Register.StartupHook('End', () => { MathJax.Hub.Queue(() => { resolve(); }); }));
  const formulas = document.querySelectorAll('.MathJax_CHTML').length;
  const prose = readProse();
  Reveal.configure({transition: 'none', backgroundTransition: 'none'});
  const scale = Reveal.getScale();
  const slides = [];
  for (const slide of Reveal.getSlides()) {
    const {h, v} = Reveal.getIndices(slide);
    Reveal.slide(h, v);
    // the deck re-renders the slide's formulas on every change: let that finish, as a presenter would
    await new Promise(resolve => MathJax.Hub.Queue(() => { resolve(); }));
    await new Promise(resolve => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    const heading = slide.querySelector('h1, h2, h3');
    const style = getComputedStyle(slide);
    // each cell's place on screen, for build_slides.plan_breaks (where a subslide would make the slide fit)
    const cells = Array.from(slide.querySelectorAll(':scope > .jp-Cell')).map(cell => ({
      id: cell.id.replace(/^cell-id=/, ''), top: Math.round(cell.offsetTop * scale),
      height: Math.round(cell.offsetHeight * scale),
    }));
    slides.push({
      h, v, title: heading ? heading.textContent.replace(/¶/g, '').trim() : '',
      height: Math.round(slide.scrollHeight * scale), shown: Math.round(slide.clientHeight * scale),
      scrollable: ['scroll', 'auto'].includes(style.overflowY), cells,
      // cells whose content runs past the slide's right edge (a code line or a table cut off)
      wide: Array.from(slide.querySelectorAll(':scope > .jp-Cell')).filter(cell => Array.from(
        cell.querySelectorAll('pre, table')).some(block => block.scrollWidth > block.clientWidth + 2
          || block.getBoundingClientRect().right > slide.getBoundingClientRect().right + 16))
        .map(cell => cell.id.replace(/^cell-id=/, '')),
    });
  }
  Reveal.slide(0, 0);
  return {
    ready: Reveal.isReady(), total: Reveal.getTotalSlides(), shown, scale, slides, prose, formulas,
    mathErrors: Array.from(document.querySelectorAll('.MathJax_Error, .mjx-merror')).map(e => e.textContent),
  };
}"""


class DeckVisitor:
    """One browser context with the network cut off; visits each deck once and remembers what it saw."""

    def __init__(self, browser) -> None:
        self.context = browser.new_context(viewport=VIEWPORT)
        self.context.route("**/*", self._offline)
        self.reports: dict[str, dict] = {}
        self.blocked: list[tuple[str, str]] = []

    def _offline(self, route) -> None:
        request = route.request
        if request.url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append((request.resource_type, request.url))
            route.abort()

    def visit(self, name: str, deck: Path) -> dict:
        if name in self.reports:
            return self.reports[name]
        page = self.context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error).splitlines()[0]))
        self.blocked.clear()
        page.goto(deck.as_uri())
        try:
            page.wait_for_selector(".reveal.ready", state="attached", timeout=START_TIMEOUT_S * 1000)
            report = page.evaluate(f"""(arg) => Promise.race([({VISIT})(arg), new Promise((_, reject) => setTimeout(
                () => reject(new Error('typesetting and visiting every slide took over {VISIT_TIMEOUT_S} s')),
                {VISIT_TIMEOUT_S * 1000}))])""", {"revealUrl": build_slides.asset_url("reveal.js")})
        except Exception as error:  # Playwright's TimeoutError or a script error in the deck
            report = {"error": f"the deck did not start: {str(error).splitlines()[0]}"}
        report.update(page_errors=errors, blocked=list(self.blocked))
        if name.startswith(SCREENSHOT_DECK) and "slides" in report:
            _screenshot_a_formula(page, report)
        page.close()
        self.reports[name] = report
        return report

    def close(self) -> None:
        self.context.close()


def _screenshot_a_formula(page, report: dict) -> None:
    """Save the first slide with typeset math that fits the screen (else the first slide) as a test artifact."""
    target = page.evaluate(
        """(revealUrl) => new Promise(resolve => require([revealUrl], Reveal => {
             const slide = Reveal.getSlides().find(s => s.querySelector('.MathJax_CHTML') && s.scrollHeight <= 700);
             resolve(slide ? Reveal.getIndices(slide) : {h: 0, v: 0});
           }))""", build_slides.asset_url("reveal.js"))
    page.evaluate("([revealUrl, h, v]) => require([revealUrl], Reveal => Reveal.slide(h, v))",
                  [build_slides.asset_url("reveal.js"), target["h"], target["v"]])
    page.wait_for_timeout(300)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"slide_{SCREENSHOT_DECK}_h{target['h']}_v{target['v']}.png"))


def overflowing(report: dict, screens: float = 2.0) -> list[str]:
    """Return the slides taller than `screens` viewports (one screen plus one scroll's worth, by default)."""
    limit = screens * VIEWPORT["height"]
    return [f"slide {s['h'] + 1}.{s['v'] + 1} {s['title'][:50]!r}: {s['height']} px "
            f"= {s['height'] / VIEWPORT['height']:.1f} screens" for s in report.get("slides", []) if s["height"] > limit]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--chromium", default=find_chromium(),
                        help="the Chromium executable (default: KD_CHROMIUM, else the system's chromium)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the decks")
    parser.add_argument("--report", type=Path, required=True, help="JSON file for what each deck showed")
    args = parser.parse_args(argv)
    if build_slides.main(["--no-tag", "--out", str(args.out), *map(str, args.notebooks)]) != 0:
        return 1
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        visitor = DeckVisitor(browser)
        for notebook in args.notebooks:
            visitor.visit(notebook.name, args.out / f"{notebook.stem}.slides.html")
        visitor.close()
        browser.close()
    args.report.write_text(json.dumps(visitor.reports), encoding="utf-8")
    summary = {name: {key: report.get(key) for key in ("total", "shown", "formulas", "error", "blocked")}
               | {"overflowing": overflowing(report)} for name, report in visitor.reports.items()}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "slides_report.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
