"""What a learner reads on a 1280x720 screen: each deck's tallest slide, and the font size it would need to fit.

    python scripts/build_slides.py --no-tag --out /tmp/slides-trial/now notebooks/*.ipynb
    python benchmarks/trial_slides_scale.py /tmp/slides-trial/now/03_distillation_loss.slides.html [--fit-text]
    python benchmarks/trial_slides_scale.py --scroll-view DECK   # a deck whose lib/reveal.js is reveal.js 5.x

The trial behind benchmarks/trial_slides.md (issue: a maintained library in place of hand-written code).
reveal.js scales the whole 960x700 slide to the viewport (`Reveal.getScale()`), never one slide's content:
a slide taller than 700 px overflows (nbconvert's template makes it scroll). So the measure of "let reveal.js
fit it" is the factor that would shrink the tallest slide onto the screen, 720 / its height on screen, and the
prose and code font sizes a learner then reads (CSS px x reveal scale x that factor).

`--fit-text` adds reveal.js's own `r-fit-text` class to every paragraph and list item of the tallest slide and
measures that slide again. `--scroll-view` opens the deck with `?view=scroll` (reveal.js 5.0+) and reports, per
page, whether the whole slide is visible without an inner scroll bar. Offline: every non-file request is aborted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

VIEWPORT = {"width": 1280, "height": 720}

MEASURE = """async () => {
  const Reveal = await new Promise((resolve, reject) => require(['lib/reveal.js/dist/reveal.js'], resolve, reject));
  await new Promise(resolve => MathJax.Hub.Register.StartupHook('End', () => { MathJax.Hub.Queue(() => { resolve(); }); }));
  Reveal.configure({transition: 'none', backgroundTransition: 'none'});
  const scale = Reveal.getScale();
  const px = selector => {
    const el = document.querySelector(selector);
    return el ? parseFloat(getComputedStyle(el).fontSize) : null;
  };
  const slides = [];
  for (const slide of Reveal.getSlides()) {
    const {h, v} = Reveal.getIndices(slide);
    Reveal.slide(h, v);
    await new Promise(resolve => MathJax.Hub.Queue(() => { resolve(); }));
    await new Promise(resolve => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    const heading = slide.querySelector('h1, h2, h3');
    slides.push({h, v, title: heading ? heading.textContent.replace(/¶/g, '').trim().slice(0, 60) : '',
                 height: Math.round(slide.scrollHeight * scale)});
  }
  Reveal.slide(0, 0);
  return {
    scale, total: Reveal.getTotalSlides(), slides,
    formulas: document.querySelectorAll('.MathJax_CHTML').length,
    mathErrors: document.querySelectorAll('.MathJax_Error, .mjx-merror').length,
    prosePx: px('.reveal .slides .jp-RenderedMarkdown p'),
    codePx: px('.reveal .slides .jp-InputArea-editor pre'),
  };
}"""

FIT_TEXT = """async ([h, v]) => {
  const Reveal = await new Promise(resolve => require(['lib/reveal.js/dist/reveal.js'], resolve));
  const slide = Reveal.getSlide(h, v);
  const items = slide.querySelectorAll('.jp-RenderedMarkdown p, .jp-RenderedMarkdown li');
  items.forEach(el => el.classList.add('r-fit-text'));
  // reveal.js runs fitty on .r-fit-text when it loads a slide: leave it (past viewDistance) and come back
  Reveal.slide(0, 0);
  await new Promise(resolve => setTimeout(resolve, 300));
  Reveal.slide(h, v);
  await new Promise(resolve => setTimeout(resolve, 500));
  const sizes = Array.from(items).map(el => parseFloat(getComputedStyle(el).fontSize));
  return {items: items.length, height: Math.round(slide.scrollHeight * Reveal.getScale()),
          minPx: Math.min(...sizes), maxPx: Math.max(...sizes)};
}"""

SCROLL_VIEW = """async () => {
  const Reveal = await new Promise((resolve, reject) => require(['lib/reveal.js/dist/reveal.js'], resolve, reject));
  await new Promise(resolve => MathJax.Hub.Register.StartupHook('End', () => { MathJax.Hub.Queue(() => { resolve(); }); }));
  await new Promise(resolve => setTimeout(resolve, 500));
  const pages = Array.from(document.querySelectorAll('.scroll-page'));
  return {
    version: Reveal.VERSION, scrollView: Reveal.isScrollView ? Reveal.isScrollView() : null,
    pages: pages.length,
    cut: pages.map(page => {
      const section = page.querySelector('section');
      return section ? {page: Math.round(page.getBoundingClientRect().height),
                        content: Math.round(section.scrollHeight * Reveal.getScale()),
                        inner: section.scrollHeight > section.clientHeight + 2} : null;
    }).filter(p => p && (p.inner || p.content > p.page)),
  };
}"""


def offline(route) -> None:
    if route.request.url.startswith(("file:", "data:", "blob:")):
        route.continue_()
    else:
        route.abort()


def shown(css_px: float | None, factor: float) -> float | None:
    """Return the size in screen px of a font set to `css_px` (None: the deck has no such text)."""
    return None if css_px is None else round(css_px * factor, 1)


def measure(page, deck: Path, fit_text: bool) -> dict:
    started = time.perf_counter()
    page.goto(deck.resolve().as_uri())
    page.wait_for_selector(".reveal.ready", state="attached", timeout=20_000)
    report = page.evaluate(MEASURE)
    report["seconds"] = round(time.perf_counter() - started, 1)
    tallest = max(report["slides"], key=lambda s: s["height"])
    fit = min(1.0, VIEWPORT["height"] / tallest["height"])
    report.update(
        deck=deck.name, bytes=deck.stat().st_size, tallest=tallest,
        over_screen=sum(s["height"] > VIEWPORT["height"] for s in report["slides"]),
        over_heights=sorted((s["height"] for s in report["slides"] if s["height"] > VIEWPORT["height"]), reverse=True),
        fit_factor=round(fit, 3),
        prose_px_now=shown(report["prosePx"], report["scale"]),
        prose_px_fitted=shown(report["prosePx"], report["scale"] * fit),
        code_px_now=shown(report["codePx"], report["scale"]),
        code_px_fitted=shown(report["codePx"], report["scale"] * fit),
    )
    del report["slides"]
    if fit_text:
        report["fit_text"] = page.evaluate(FIT_TEXT, [tallest["h"], tallest["v"]])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("decks", nargs="+", type=Path)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--fit-text", action="store_true", help="try r-fit-text on each deck's tallest slide")
    parser.add_argument("--scroll-view", action="store_true", help="open with ?view=scroll (reveal.js 5.0+)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        context = browser.new_context(viewport=VIEWPORT)
        context.route("**/*", offline)
        for deck in args.decks:
            page = context.new_page()
            if args.scroll_view:
                page.goto(deck.resolve().as_uri() + "?view=scroll")
                report = {"deck": deck.name} | page.evaluate(SCROLL_VIEW)
            else:
                report = measure(page, deck, args.fit_text)
            print(json.dumps(report), flush=True)
            page.close()
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
