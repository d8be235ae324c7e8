"""Trial: could adjustText (label placement) and matplotlib's LogLocator (log-axis ticks) replace the hand-written
label engine of ``kd.plots.plot_scatter`` (notebook 05's scorecards) and keep every behaviour tests/test_plots.py checks?

    .venv/bin/pip install --target /tmp/adjusttext adjustText==1.4.0   # not a course dependency (it brings scipy)
    PYTHONPATH=/tmp/adjusttext .venv/bin/python benchmarks/trial_adjusttext.py

Draws the same point sets (notebook 05's scorecard, the tests' cases, random sets) with the course's ``plot_scatter``
and with a prototype built on ``adjustText.adjust_text`` + ``LogLocator(subs=(1, 2, 5))``, and prints for each the
seconds to draw and every behaviour that fails, with numbers; then the lines of code of each. The prototype runs
adjustText a fixed number of iterations (``iter_lim``), not for its default one second, so results do not depend on
the CPU. Other settings tried (expand, force_static/text/pull, explode_radius, avoid_self, only_move, a start 8 px
right of the point) did not make the scorecard pass either. PNGs go to /tmp/trial_adjusttext/ to compare by eye.

Result (adjustText 1.4.0, matplotlib 3.11.2): the prototype fails 3 of the 12 scatter/log-tick tests when
monkeypatched in (nearer-own-point on the scorecard, log and linear x: cnn_cosine_kd's name 4.0 px from its point but
1.7 px from cnn_at_kd; ticks over 2-3,000,000: LogLocator(subs=(1, 2, 5)) gives 24 labels, 9 pairs overlapping, and
with numticks <= 6 none at all). adjustText repels names from points and names but has no notion of "nearer its own
point than any other", which is what tells a reader which CNN is which. So kd.plots keeps its engine. The ticks alone
would pass with LogLocator(subs=(1, 2, 5) if the axis spans <= 3 decades else (1,)), measured on the five tested
ranges, but that rule does not measure label widths as _readable_log_ticks does.
"""

from __future__ import annotations

import inspect
import re
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from adjustText import __version__ as adjusttext_version  # noqa: E402
from adjustText import adjust_text  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from scipy.cluster.hierarchy import fcluster, linkage  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_plots import scorecard_points  # noqa: E402

import kd_utils as kd  # noqa: E402

OUT = Path("/tmp/trial_adjusttext")


def plot_scatter_adjusttext(points, x, y, xlabel, ylabel, title, logx=False, colors=None, figsize=(11, 6.5)):
    """The prototype: kd.plots.plot_scatter's drawing, with adjustText placing the names and LogLocator the ticks."""
    groups = list(dict.fromkeys(point.get("group") for point in points))
    if None in groups and len(groups) > 1:
        raise ValueError("give every point a 'group' or none: a point without one would have no colour in the legend")
    figure, axis = plt.subplots(figsize=figsize)
    marker_size = 110
    if groups != [None]:
        colors = {**dict(zip(groups, kd.plots.GROUP_COLORS * len(groups))), **(colors or {})}
        for group, marker in zip(groups, kd.plots.GROUP_MARKERS * len(groups)):
            members = [point for point in points if point["group"] == group]
            axis.scatter([p[x] for p in members], [p[y] for p in members], s=marker_size, marker=marker,
                         color=colors[group], edgecolor="white", linewidth=0.8, label=group, zorder=3)
        axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    else:
        axis.scatter([p[x] for p in points], [p[y] for p in points], s=marker_size, color=kd.plots.BLUE, zorder=3)
    if logx:
        axis.set_xscale("log")
        axis.xaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
        axis.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 10 else f"{v:g}"))
        axis.xaxis.set_minor_formatter(ticker.NullFormatter())
    axis.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axis.margins(x=0.06, y=0.14)
    figure.canvas.draw()
    figure.set_layout_engine("none")  # names are placed in pixels: nothing may move the axes afterwards
    pixels = axis.transData.transform([(p[x], p[y]) for p in points])
    radius = np.sqrt(marker_size) / 2 * figure.dpi / 72
    stacks = fcluster(linkage(pixels, "single"), radius, "distance") if len(points) > 1 else [1]
    texts = []
    for stack in dict.fromkeys(stacks):  # points on top of one another share one name, the top one first
        members = sorted((i for i in range(len(points)) if stacks[i] == stack), key=lambda i: -pixels[i][1])
        anchor = axis.transData.inverted().transform(pixels[members].mean(axis=0))
        texts.append(axis.text(*anchor, ", ".join(points[i]["name"] for i in members), fontsize=12, zorder=4))
    adjust_text(texts, x=[p[x] for p in points], y=[p[y] for p in points], ax=axis, expand_axes=True, iter_lim=400,
                arrowprops={"arrowstyle": "-", "color": "0.45", "lw": 0.9})
    return figure


def box_distance(box, point) -> float:
    return float(np.hypot(max(box.x0 - point[0], 0.0, point[0] - box.x1), max(box.y0 - point[1], 0.0, point[1] - box.y1)))


def failures(figure, points) -> dict[str, str]:
    """Measure each behaviour tests/test_plots.py checks (and the docstring's 'names inside the axes'); {rule: numbers}."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    axis = figure.axes[0]
    boxes = {label.get_text(): Text.get_window_extent(label, renderer) for label in axis.texts}
    pixels = {p["name"]: axis.transData.transform((p["x"], p["y"])) for p in points}
    found = {}
    named = sorted(name for text in boxes for name in text.split(", "))
    if named != sorted(pixels):
        found["one name per point"] = f"names drawn {named}"
    worst = []
    for text, box in boxes.items():
        own = min(box_distance(box, pixels[name]) for name in text.split(", ") if name in pixels)
        other = min((box_distance(box, p) for name, p in pixels.items() if name not in text.split(", ")), default=np.inf)
        if own >= other:
            worst.append(f"{text}: {own:.1f} px from its point, {other:.1f} px from another")
    if worst:
        found["nearer its own point"] = "; ".join(worst)
    listed = list(boxes.values())
    overlapping = sum(a.overlaps(b) for i, a in enumerate(listed) for b in listed[i + 1:])
    if overlapping:
        found["names do not overlap"] = f"{overlapping} pairs overlap"
    covered = [name for name, p in pixels.items() if any(box.contains(*p) for box in listed)]
    if covered:
        found["no name covers a point"] = f"covered: {covered}"
    frame = axis.bbox
    beyond = {text: max(frame.x0 - b.x0, b.x1 - frame.x1, frame.y0 - b.y0, b.y1 - frame.y1) for text, b in boxes.items()}
    if any(pixels_out > 1 for pixels_out in beyond.values()):
        found["names inside the axes (not tested)"] = "; ".join(f"{t}: {out:.1f} px out" for t, out in beyond.items() if out > 1)
    legend = axis.get_legend()
    if legend is not None and legend.get_window_extent(renderer).overlaps(axis.get_window_extent(renderer)):
        found["legend beside the axes"] = "the legend overlaps the axes"
    if axis.get_xscale() == "log":
        labels = [label for label in axis.xaxis.get_ticklabels() if label.get_visible() and label.get_text()]
        texts = [label.get_text() for label in labels]
        ticks = [label.get_window_extent(renderer) for label in labels]
        touching = sum(a.overlaps(b) for i, a in enumerate(ticks) for b in ticks[i + 1:])
        if len(labels) < 2 or touching or not all(re.fullmatch(r"[0-9][0-9,]*(\.[0-9]+)?", t) for t in texts):
            found["log ticks: >= 2 plain numbers, none touching"] = f"{len(labels)} labels, {touching} overlapping pairs"
    return found


def point_sets() -> dict[str, tuple[list[dict], bool]]:
    kilobytes = {"teacher": 1720, "mlp_scratch": 420, "mlp_kd": 420, "mlp_ls": 210}  # CNNs ~100 KB, stacked
    sizes = [p | {"x": kilobytes.get(p["name"], 96 + i % 4)} for i, p in enumerate(scorecard_points())]
    rng = np.random.default_rng(0)
    sets = {"05 latency, log x": (scorecard_points(), True), "05 latency, linear x": (scorecard_points(), False),
            "05 latency, no groups": (scorecard_points(groups=False), True), "05 size (KB), log x": (sizes, True),
            "stacked a, b + c": ([{"name": "a", "x": 400, "y": 89.27}, {"name": "b", "x": 400, "y": 89.26},
                                  {"name": "c", "x": 1000, "y": 92}], True)}
    for n in (8, 12, 16):
        sets[f"random {n}"] = ([{"name": f"model_{i}", "x": float(10 ** rng.uniform(1, 3)), "y": float(rng.uniform(80, 92)),
                                 "group": f"g{i % 3}"} for i in range(n)], True)
    for low, high in [(150, 420), (37, 502), (41, 1088), (5_506, 550_600), (2, 3_000_000)]:
        sets[f"ticks {low}-{high}"] = ([{"name": f"p{i}", "x": float(v), "y": float(i)}
                                        for i, v in enumerate(np.geomspace(low, high, 5))], True)
    return sets


def main() -> None:
    OUT.mkdir(exist_ok=True)
    engines = {"hand-written (kd.plots)": kd.plots.plot_scatter, f"adjustText {adjusttext_version}": plot_scatter_adjusttext}
    for label, plot in engines.items():
        print(f"== {label}")
        total, failed = 0.0, 0
        for name, (points, logx) in point_sets().items():
            start = time.perf_counter()
            figure = plot(points, "x", "y", "x", "y", name, logx=logx)
            figure.canvas.draw()
            seconds = time.perf_counter() - start
            total += seconds
            found = failures(figure, points)
            figure.savefig(OUT / f"{label.split()[0]}_{re.sub(r'[^a-z0-9]+', '_', name.lower())}.png")
            plt.close(figure)
            failed += any(not rule.endswith("(not tested)") for rule in found)
            print(f"  {name:24s} {seconds:5.2f} s  " + ("ok" if not found else " | ".join(f"{k}: {v}" for k, v in found.items())))
        print(f"  {failed} of {len(point_sets())} sets break a tested behaviour; {total:.1f} s to draw them all")
    helpers = [getattr(kd.plots, name) for name in dir(kd.plots) if name.startswith("_") and inspect.isfunction(
        getattr(kd.plots, name)) and name not in ("_image", "_annotate", "_probability_text")]
    engine = sum(len(inspect.getsource(f).splitlines()) for f in helpers)
    print(f"lines: plot_scatter {len(inspect.getsource(kd.plots.plot_scatter).splitlines())} + its {len(helpers)} helpers "
          f"{engine}; prototype {len(inspect.getsource(plot_scatter_adjusttext).splitlines())} (+ adjustText, scipy)")


if __name__ == "__main__":
    main()
