"""Trial: could a maintained library draw the course's box-and-arrow diagrams instead of the hand-written
``Diagram`` class in ``scripts/draw_images.py``? Redraws ``teacher_student`` (11 boxes, 11 arrows: the most
box-and-arrow-like image) with Graphviz and with schemdraw, and measures each against the matplotlib original.

    apt-get install -y graphviz                                   # the `dot` program (Debian)
    .venv/bin/pip install --target /tmp/gv graphviz               # PyPI bindings; not course dependencies
    .venv/bin/pip install --target /tmp/sd schemdraw
    PYTHONPATH=/tmp/gv:/tmp/sd .venv/bin/python benchmarks/trial_diagrams.py [--out DIR]

Writes only into a temporary folder (or --out), never into images/. Measures per variant: lines of code for
the diagram, image size in px, lettering against the script's rules (16 pt text, 14 pt never smaller, 21 pt
title at 120 dpi: measured as the pixel height of a rendered capital "H"), bold and subscripts, whether
``draw_images.layout_problems`` can check it, and whether two runs give the same bytes. Lists which images
of draw_images.py draw data (bars, an image) and so lie outside any graph library. Prints a conclusion
computed from those numbers.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import inspect
import io
import json
import sys
import tempfile
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import graphviz  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import schemdraw  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from PIL import Image  # noqa: E402
from schemdraw import elements as elm  # noqa: E402
from schemdraw import flow  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import draw_images as di  # noqa: E402

BOLD_TTF = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"  # schemdraw has no weight, only a font file
WIDTH_IN = 13.3  # draw_images' canvas width for every diagram: 1596 px at 120 dpi


# ----------------------------------------------------------------------------- Graphviz


def teacher_student_graphviz(teacher_params: str, student_params: str, rankdir: str = "LR") -> graphviz.Digraph:
    """teacher_student with Graphviz: nodes, edges and ranks; dot places everything."""
    colors = {role: {"fillcolor": fill, "color": edge} for role, (fill, edge) in di.PALETTE.items()}
    graph = graphviz.Digraph(graph_attr={
        "rankdir": rankdir, "dpi": str(di.DPI), "fontname": "DejaVu Sans", "fontsize": str(di.TITLE_SIZE),
        "label": "<<B>The teacher–student framework</B>>", "labelloc": "t", "nodesep": "0.45", "ranksep": "0.45"},
        node_attr={"shape": "box", "style": "rounded,filled", "fontname": "DejaVu Sans",
                   "fontsize": str(di.FONT_SIZE), "penwidth": "2.4", "fontcolor": di.TEXT_COLOR},
        edge_attr={"penwidth": "2.4", "color": di.ARROW_COLOR, "fontname": "DejaVu Sans",
                   "fontsize": str(di.SMALL_FONT_SIZE), "arrowsize": "1.2"})
    graph.node("image", "input\nimage x", **colors["data"])
    graph.node("teacher", f"<<B>Teacher<BR/>big CNN<BR/>{teacher_params} params<BR/>frozen</B>>", **colors["teacher"])
    graph.node("student", f"<<B>Student<BR/>small CNN<BR/>{student_params} params</B>>", **colors["student"])
    graph.node("targets", "<soft targets<BR/>softmax(z<SUB>t</SUB> / T)>", **colors["teacher"])
    graph.node("logits", "<student<BR/>logits z<SUB>s</SUB>>", **colors["student"])
    graph.node("soft", "soft loss\nT² · KL(teacher ‖ student)", **colors["loss"])
    graph.node("hard", "<hard loss<BR/>CE(softmax(z<SUB>s</SUB>), y)>", **colors["loss"])
    graph.node("label", "true label y", **colors["data"])
    graph.node("total", "<<B>total<BR/>loss</B>>", **colors["loss"])
    graph.edges([("image", "teacher"), ("image", "student"), ("teacher", "targets"), ("student", "logits"),
                 ("targets", "soft"), ("logits", "hard"), ("label", "hard")])
    graph.edge("logits", "soft", label="÷ T, softmax")
    graph.edge("soft", "total", label="× α")
    graph.edge("hard", "total", label="× (1 − α)")
    graph.edge("total", "student", label="gradients update the student only; the teacher stays frozen",
               style="dashed", color=di.HIGHLIGHT_COLOR, constraint="false")
    return graph


# ----------------------------------------------------------------------------- schemdraw


def teacher_student_schemdraw(teacher_params: str, student_params: str) -> Figure:
    """teacher_student with schemdraw (flow boxes and wires) on the same 13.3 × 6.9 in matplotlib canvas."""
    figure = plt.figure(figsize=(WIDTH_IN, 6.9), dpi=di.DPI)
    axis = figure.add_axes((0, 0, 1, 1), xlim=(0, WIDTH_IN), ylim=(0, 6.9), aspect="equal")
    axis.axis("off")

    def box(x, y, text, role, w, h, bold=False):
        fill, edge = di.PALETTE[role]
        return flow.RoundBox(w=w, h=h, cornerradius=0.12).anchor("center").at((x, y)).fill(fill).color(edge).label(
            text, fontsize=di.FONT_SIZE, color=di.TEXT_COLOR, font=BOLD_TTF if bold else None)

    with schemdraw.Drawing(canvas=axis, show=False) as drawing:
        drawing.config(inches_per_unit=1, lw=2.4, color=di.ARROW_COLOR, font="DejaVu Sans")
        elm.Label().at((WIDTH_IN / 2, 6.5)).label("The teacher–student framework", fontsize=di.TITLE_SIZE,
                                                   font=BOLD_TTF, color=di.TEXT_COLOR)
        image = box(1.0, 3.4, "input\nimage x", "data", 1.5, 1.1)
        big = box(3.35, 5.0, f"Teacher\nbig CNN\n{teacher_params} params\nfrozen", "teacher", 2.2, 2.0, True)
        small = box(3.35, 1.75, f"Student\nsmall CNN\n{student_params} params", "student", 1.7, 1.3, True)
        targets = box(6.2, 5.0, "soft targets\nsoftmax(z$_t$ / T)", "teacher", 2.4, 1.1)
        logits = box(6.2, 1.75, "student\nlogits z$_s$", "student", 2.4, 1.1)
        soft = box(9.55, 5.0, "soft loss\nT² · KL(teacher ‖ student)", "loss", 3.1, 1.1)
        hard = box(9.55, 1.75, "hard loss\nCE(softmax(z$_s$), y)", "loss", 3.1, 1.1)
        label = box(10.1, 3.4, "true label y", "data", 1.9, 0.75)
        total = box(12.45, 3.4, "total\nloss", "loss", 1.3, 1.1, True)
        arrow = {"arrowwidth": 0.16, "arrowlength": 0.22}
        elm.Wire("|-", arrow="->", **arrow).at(image.N).to(big.W)
        elm.Wire("|-", arrow="->", **arrow).at(image.S).to(small.W)
        for start, end in ((big, targets), (small, logits), (targets, soft), (logits, hard)):
            elm.Arrow(**arrow).at(start.E).to(end.W)
        elm.Arrow(**arrow).at(logits.NNE).to(soft.SSW)
        elm.Label().at((6.9, 3.4)).label("÷ T, softmax", fontsize=di.SMALL_FONT_SIZE, color=di.TEXT_COLOR)
        elm.Arrow(**arrow).at(label.S).to((label.center[0], hard.N[1]))
        for start, text, y in ((soft, "× α", 4.15), (hard, "× (1 − α)", 2.62)):
            elm.Wire("-|").at(start.E).to((11.45, 3.4))
            elm.Label().at((11.45, y)).label(text, fontsize=di.SMALL_FONT_SIZE, color=di.TEXT_COLOR, ofst=0)
        elm.Arrow(**arrow).at((11.45, 3.4)).to(total.W)
        elm.Wire("n", k=0.42 - total.S[1], arrow="->", **arrow).at(total.S).to(small.S).color(di.HIGHLIGHT_COLOR).linestyle("--")
        elm.Label().at((7.9, 0.7)).label("gradients update the student only; the teacher stays frozen",
                                         fontsize=di.SMALL_FONT_SIZE, color=di.TEXT_COLOR)
    drawing.draw(show=False)  # the context manager draws nothing with show=False
    return figure


# ----------------------------------------------------------------------------- measurements


def code_lines(function) -> int:
    """Non-blank source lines of a function, its docstring left out."""
    source = textwrap.dedent(inspect.getsource(function))
    body = ast.parse(source).body[0].body
    skip = set()
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        skip = set(range(body[0].lineno, body[0].end_lineno + 1))
    return sum(1 for number, line in enumerate(source.splitlines(), 1) if line.strip() and number not in skip)


def class_lines(cls) -> int:
    return sum(1 for line in inspect.getsource(cls).splitlines() if line.strip())


def label_crossings(layout: dict) -> list[str]:
    """Edge labels of a Graphviz JSON layout that some edge's spline runs through (dot gives labels no background)."""
    boxes = []
    for edge in layout.get("edges", []):
        size = next((op["size"] for op in edge.get("_ldraw_", []) if op["op"] == "F"), 14.0)
        for op in edge.get("_ldraw_", []):
            if op["op"] == "T":
                (x, y), half = op["pt"], op["width"] / 2
                boxes.append((op["text"], x - half, x + half, y - 0.25 * size, y + 0.75 * size))
    crossed = set()
    for edge in layout.get("edges", []):
        points = np.array([[float(v) for v in item.split(",")] for item in edge["pos"].split()
                           if not item.startswith(("e,", "s,"))])
        t = np.linspace(0, 1, 50)[:, None]
        for start in range(0, len(points) - 3, 3):
            p0, p1, p2, p3 = points[start:start + 4]
            curve = (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3
            for text, x0, x1, y0, y1 in boxes:
                if ((curve[:, 0] > x0) & (curve[:, 0] < x1) & (curve[:, 1] > y0) & (curve[:, 1] < y1)).any():
                    crossed.add(text)
    return sorted(crossed)


def bold_texts(figure: Figure) -> int:
    """How many texts of a matplotlib figure are drawn bold (the script bolds its title and key boxes)."""
    return sum(1 for text in figure.findobj(Text) if text.get_text().strip() and text.get_weight() in ("bold", 700))


def backed_texts(figure: Figure) -> int:
    """How many texts carry a background box (the script's arrow labels sit on white, clear of the line)."""
    return sum(1 for text in figure.findobj(Text) if text.get_text().strip() and text.get_bbox_patch() is not None)


def png_of(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=di.DPI, facecolor="white", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def ink_height(png: bytes) -> int:
    """Pixel rows holding dark ink (the glyph) in a PNG."""
    gray = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    rows = np.nonzero((gray < 128).any(axis=1))[0]
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


def cap_heights(points: float) -> dict[str, int]:
    """Height in px of a capital "H" at `points` and 120 dpi: matplotlib (the script) against Graphviz."""
    figure = plt.figure(figsize=(2, 2), dpi=di.DPI)
    figure.text(0.5, 0.5, "H", fontsize=points, ha="center", va="center", family="DejaVu Sans")
    dot = graphviz.Digraph(graph_attr={"dpi": str(di.DPI), "pad": "0.2"},
                           node_attr={"shape": "plaintext", "fontname": "DejaVu Sans", "fontsize": str(points)})
    dot.node("H")
    return {"matplotlib": ink_height(png_of(figure)), "graphviz": ink_height(dot.pipe(format="png"))}


def data_figures() -> dict[str, list[str]]:
    """For each image of draw_images.py, the data-plotting calls its code makes (empty: a pure drawing)."""
    plotting = {"bar", "barh", "imshow", "plot", "plot_probability_bars", "set_xticks", "set_yticks", "subplots"}
    functions = {**di.PURE_FIGURES, "dark_knowledge": di.dark_knowledge_figure}
    found = {}
    for name, function in functions.items():
        calls = {node.func.attr for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(function))))
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
        found[name] = sorted(calls & plotting)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="folder for the PNGs (default: a new temp folder)")
    out = parser.parse_args().out or Path(tempfile.mkdtemp(prefix="trial_diagrams_"))
    out.mkdir(parents=True, exist_ok=True)
    teacher, student = di._models()
    params = (di._thousands(di.kd.count_parameters(teacher)), di._thousands(di.kd.count_parameters(student)))

    runs = {"matplotlib": [], "graphviz": [], "schemdraw": []}
    problems = {}
    for _ in range(2):
        figure = di.teacher_student_figure()
        problems["matplotlib"] = di.layout_problems(figure)
        bold, backed = {"matplotlib": bold_texts(figure)}, {"matplotlib": backed_texts(figure)}
        runs["matplotlib"].append(png_of(figure))
        runs["graphviz"].append(teacher_student_graphviz(*params).pipe(format="png"))
        figure = teacher_student_schemdraw(*params)
        problems["schemdraw"] = di.layout_problems(figure)  # text checks only: it is no draw_images.Diagram
        bold["schemdraw"], backed["schemdraw"] = bold_texts(figure), backed_texts(figure)
        runs["schemdraw"].append(png_of(figure))
    layouts = {rankdir: json.loads(teacher_student_graphviz(*params, rankdir).pipe(format="json"))
               for rankdir in ("LR", "TB")}
    (out / "teacher_student_graphviz_TB.png").write_bytes(teacher_student_graphviz(*params, "TB").pipe(format="png"))

    helper_lines = class_lines(di.Box) + class_lines(di.Diagram)
    lines = {"matplotlib": code_lines(di.teacher_student_figure),
             "graphviz": code_lines(teacher_student_graphviz), "schemdraw": code_lines(teacher_student_schemdraw)}
    heights = {size: cap_heights(size) for size in (di.SMALL_FONT_SIZE, di.FONT_SIZE, di.TITLE_SIZE)}
    results = {}
    print(f"teacher_student, PNGs in {out}")
    print(f"{'variant':<11} {'lines':>5} {'px':>10} {'deterministic':>13} {'layout check':>14}")
    for name, pngs in runs.items():
        (out / f"teacher_student_{name}.png").write_bytes(pngs[0])
        size = Image.open(io.BytesIO(pngs[0])).size
        same = hashlib.sha256(pngs[0]).digest() == hashlib.sha256(pngs[1]).digest()
        check = "n/a (no figure)" if name == "graphviz" else f"{len(problems[name])} problems"
        results[name] = {"lines": lines[name], "size": size, "same": same}
        print(f"{name:<11} {lines[name]:>5} {size[0]:>5}×{size[1]:<4} {str(same):>13} {check:>14}")
    print(f"  (+ {helper_lines} lines of Box/Diagram that matplotlib's three box diagrams share, "
          f"{helper_lines // 3} each; layout_problems adds its own checks on top)")
    for name, found in problems.items():
        for problem in found:
            print(f"  {name}: {problem}")
    print("cap height of 'H' in px at 120 dpi, matplotlib / graphviz: "
          + ", ".join(f"{size} pt {h['matplotlib']}/{h['graphviz']}" for size, h in heights.items()))

    same_size = all(abs(h["graphviz"] - h["matplotlib"]) <= 1 for h in heights.values())
    graphviz_faults = {}
    for rankdir, layout in layouts.items():
        width, height = (float(value) / 72 for value in layout["bb"].split(",")[2:])
        smallest = di.SMALL_FONT_SIZE * min(1.0, WIDTH_IN / width)
        crossed = label_crossings(layout)
        print(f"graphviz rankdir={rankdir}: dot lays it out {width:.2f} × {height:.2f} in (slide {WIDTH_IN} in wide), "
              f"smallest lettering at slide width {smallest:.1f} pt (rule: never under {di.SMALL_FONT_SIZE}); "
              f"edge labels an edge runs through: {crossed or 'none'}")
        graphviz_faults[rankdir] = ([f"{smallest:.1f} pt labels once shrunk to the slide"]
                                    if smallest < di.SMALL_FONT_SIZE - 0.05 else []) \
            + [f"an edge runs through {text!r}" for text in crossed]
    print(f"bold texts (title, Teacher, Student, total loss): matplotlib {bold['matplotlib']}, "
          f"graphviz all (HTML <B>), schemdraw {bold['schemdraw']} (a bold .ttf path resolves to the family, "
          f"regular)")
    print(f"labels on a white background (arrow labels crossing lines): matplotlib {backed['matplotlib']}, "
          f"schemdraw {backed['schemdraw']} (its label() has no background option)")
    data = {name: calls for name, calls in data_figures().items() if calls}
    print("images that plot data (no graph library draws these): "
          + "; ".join(f"{name} ({', '.join(calls)})" for name, calls in data.items()))

    per_diagram = lines["matplotlib"] + helper_lines / 3
    failures = {
        "graphviz": ([] if same_size else ["point sizes render differently"])
        + [f"{rankdir}: {', '.join(faults)}" for rankdir, faults in graphviz_faults.items() if faults]
        + ["dot places the boxes, so layout_problems cannot check it"],
        "schemdraw": ([] if bold["schemdraw"] == bold["matplotlib"] else
                      [f"{bold['schemdraw']} of {bold['matplotlib']} bold texts"])
        + ([] if backed["schemdraw"] == backed["matplotlib"] else ["lines run through arrow labels"])
        + (["layout_problems loses its box and arrow checks (no Diagram)"]),
    }
    print("\nconclusion:")
    for name in ("graphviz", "schemdraw"):
        failures[name] += [] if results[name]["same"] else ["not byte-deterministic"]
        saved = per_diagram - lines[name]
        verdict = "switch" if saved > 0 and not failures[name] else "keep draw_images.Diagram"
        print(f"  {name}: {verdict}: {lines[name]} lines vs {per_diagram:.0f} per diagram (saves {saved:.0f}), "
              f"but {'; '.join(failures[name])}")
    print(f"  {', '.join(data)}: matplotlib only (they plot computed numbers); a library could take over at most "
          f"{len(di.ALL_IMAGES) - len(data)} of {len(di.ALL_IMAGES)} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
