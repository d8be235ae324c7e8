"""Draw the course's diagrams into images/ as PNG, sized and lettered to read on a projector.

    python scripts/draw_images.py                      # every image (what `make images` does)
    python scripts/draw_images.py --only temperature_scaling teacher_student
    python scripts/draw_images.py --wait 300           # wait up to 5 min for a teacher being trained elsewhere

Four images are pure drawings (no data, no model weights). `dark_knowledge` shows the real
soft targets of the trained full-mode teacher (checkpoints/full/teacher.pt), trained first if
there is none. Output is deterministic: the same checkpoint gives the same pixels.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import kd_utils as kd  # noqa: E402

IMAGES_DIR = ROOT / "images"
DPI = 120
FONT_SIZE = 16  # points: text in boxes and on axes
SMALL_FONT_SIZE = 14  # points: arrow labels, bar values; never smaller
TITLE_SIZE = 21
# Colours and bar charts come from kd.plots, so a diagram and a notebook figure of the same idea look alike.
TEXT_COLOR, ARROW_COLOR, HIGHLIGHT_COLOR = kd.plots.COLORS["text"], kd.plots.COLORS["line"], kd.plots.COLORS["highlight"]
PALETTE = kd.plots.BOX_COLORS
TEMPERATURE_LOGITS = (5.0, 3.5, 2.0, 1.0, 0.0, -1.0)  # one fixed, made-up logit vector
TEMPERATURES = (1, 2, 5, 10)
DARK_KNOWLEDGE_TEMPERATURES = (1, 4)


# ----------------------------------------------------------------------------- box-and-arrow diagrams


@dataclass
class Box:
    """A labelled rounded box; `x`, `y` is its centre, all sizes in inches."""

    patch: FancyBboxPatch
    text: Text
    x: float
    y: float
    width: float
    height: float

    def edge(self, side: str) -> tuple[float, float]:
        """Return the midpoint of one side: "left", "right", "top" or "bottom"."""
        dx = {"left": -self.width / 2, "right": self.width / 2}.get(side, 0.0)
        dy = {"bottom": -self.height / 2, "top": self.height / 2}.get(side, 0.0)
        return self.x + dx, self.y + dy


Point = tuple[float, float]


@dataclass
class Diagram:
    """A canvas measured in inches (one data unit = one inch), holding boxes, arrows and labels."""

    width: float
    height: float
    title: str = ""
    figure: Figure = field(init=False)
    boxes: list[Box] = field(default_factory=list)
    labels: list[Text] = field(default_factory=list)
    segments: list[tuple[Box | None, Box | None, list[Point]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.figure = plt.figure(figsize=(self.width, self.height), dpi=DPI)
        self.axis = self.figure.add_axes((0, 0, 1, 1))
        self.axis.set_xlim(0, self.width)
        self.axis.set_ylim(0, self.height)
        self.axis.set_aspect("equal")
        self.axis.axis("off")
        self.figure.diagram = self  # lets layout_problems find the boxes
        if self.title:
            self.note(self.width / 2, self.height - 0.2, self.title, size=TITLE_SIZE, weight="bold", va="top")

    def box(self, x: float, y: float, text: str, role: str = "op", width: float = 2.2, height: float = 0.95,
            size: float = FONT_SIZE, weight: str = "normal") -> Box:
        """Draw a rounded box centred on (x, y) with centred text."""
        fill, edge = PALETTE[role]
        patch = FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0,rounding_size=0.12",
                               facecolor=fill, edgecolor=edge, linewidth=2.4, zorder=2)
        self.axis.add_patch(patch)
        label = self.axis.text(x, y, text, ha="center", va="center", fontsize=size, color=TEXT_COLOR, weight=weight,
                               linespacing=1.35, zorder=3)
        box = Box(patch, label, x, y, width, height)
        self.boxes.append(box)
        return box

    def arrow(self, start: Box | Point, end: Box | Point, label: str = "", via: Sequence[Point] = (),
              label_at: Point | None = None, dashed: bool = False, color: str = ARROW_COLOR) -> FancyArrowPatch:
        """Draw an arrow from `start` to `end` (boxes are joined centre to centre, clipped at their edges).

        `via` lists corner points for an arrow that must go around something; `label_at` places
        the label (default: the middle of the first straight segment).
        """
        start_point = (start.x, start.y) if isinstance(start, Box) else start
        end_point = (end.x, end.y) if isinstance(end, Box) else end
        points = [start_point, *via, end_point]
        style = {"arrowstyle": "-|>", "mutation_scale": 24, "linewidth": 2.4, "color": color, "zorder": 1,
                 "linestyle": (0, (5, 3)) if dashed else "-"}
        if via:
            codes = [MplPath.MOVETO] + [MplPath.LINETO] * (len(points) - 1)
            points = self._clip(points, start, end)
            arrow = FancyArrowPatch(path=MplPath(points, codes), **style)
        else:
            arrow = FancyArrowPatch(start_point, end_point, patchA=getattr(start, "patch", None),
                                    patchB=getattr(end, "patch", None), shrinkA=2, shrinkB=2, **style)
        self.axis.add_patch(arrow)
        self.segments.append((start if isinstance(start, Box) else None, end if isinstance(end, Box) else None, points))
        if label:
            if label_at is None:
                label_at = ((points[0][0] + points[1][0]) / 2, (points[0][1] + points[1][1]) / 2)
            self.note(*label_at, label, size=SMALL_FONT_SIZE, background=True)
        return arrow

    @staticmethod
    def _clip(points: list[Point], start: Box | Point, end: Box | Point) -> list[Point]:
        """Move the first and last point of an axis-aligned path from box centres to box edges."""
        points = list(points)
        for index, neighbour, box in ((0, 1, start), (-1, -2, end)):
            if isinstance(box, Box):
                (x, y), (nx, ny) = points[index], points[neighbour]
                if abs(nx - x) >= abs(ny - y):
                    points[index] = (x + np.sign(nx - x) * box.width / 2, y)
                else:
                    points[index] = (x, y + np.sign(ny - y) * box.height / 2)
        return points

    def note(self, x: float, y: float, text: str, size: float = FONT_SIZE, background: bool = False,
             **kwargs) -> Text:
        """Write free text (a title, an arrow label, a caption); it must not overlap a box."""
        options = {"ha": "center", "va": "center", "fontsize": size, "color": TEXT_COLOR, "zorder": 4} | kwargs
        if background:
            options["bbox"] = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"}
        label = self.axis.text(x, y, text, **options)
        self.labels.append(label)
        return label


def layout_problems(figure: Figure, margin_px: float = 2.0) -> list[str]:
    """Return what is wrong with a figure's layout: clipped text, overlapping text, text outside its box,
    labels on top of boxes, arrows running through boxes they do not join. Empty when the figure is clean."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    canvas = figure.bbox
    problems = []
    hidden = _undrawn_tick_labels(figure)
    texts = [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in hidden]
    extents = {id(t): t.get_window_extent(renderer) for t in texts}
    for text in texts:
        extent = extents[id(text)]
        if extent.x0 < canvas.x0 - 0.5 or extent.y0 < canvas.y0 - 0.5 or extent.x1 > canvas.x1 + 0.5 \
                or extent.y1 > canvas.y1 + 0.5:
            problems.append(f"clipped at the figure's edge: {text.get_text()!r}")
    for index, first in enumerate(texts):
        for second in texts[index + 1:]:
            if _overlap(extents[id(first)], extents[id(second)], margin_px):
                problems.append(f"texts overlap: {first.get_text()!r} and {second.get_text()!r}")
    diagram = getattr(figure, "diagram", None)
    if diagram is None:
        return problems
    box_extents = [(box, box.patch.get_window_extent(renderer)) for box in diagram.boxes]
    for box, extent in box_extents:
        text_extent = extents[id(box.text)]
        if not extent.padded(-4).contains(text_extent.x0, text_extent.y0) or \
                not extent.padded(-4).contains(text_extent.x1, text_extent.y1):
            problems.append(f"text does not fit its box: {box.text.get_text()!r}")
        for other, other_extent in box_extents:
            if other is not box and _overlap(extent, other_extent, margin_px):
                problems.append(f"boxes overlap: {box.text.get_text()!r} and {other.text.get_text()!r}")
    for label in diagram.labels:
        for box, extent in box_extents:
            if _overlap(extents[id(label)], extent, margin_px):
                problems.append(f"label {label.get_text()!r} lies on box {box.text.get_text()!r}")
    for start, end, points in diagram.segments:
        for box in diagram.boxes:
            if box is not start and box is not end and _path_crosses(points, box):
                problems.append(f"an arrow runs through box {box.text.get_text()!r}")
    return problems


def _undrawn_tick_labels(figure: Figure) -> set[int]:
    """Return the ids of tick labels matplotlib keeps but does not draw (axis off, or tick outside the view)."""
    hidden = set()
    for axes in figure.axes:
        for axis in (axes.xaxis, axes.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not (axes.axison and axes.get_visible()) or not low - 1e-9 <= tick.get_loc() <= high + 1e-9:
                    hidden.update({id(tick.label1), id(tick.label2)})
            if not (axes.axison and axes.get_visible()):
                hidden.add(id(axis.label))
    return hidden


def _overlap(first: Bbox, second: Bbox, margin: float) -> bool:
    return (first.x0 < second.x1 - margin and second.x0 < first.x1 - margin
            and first.y0 < second.y1 - margin and second.y0 < first.y1 - margin)


def _path_crosses(points: Sequence[Point], box: Box, samples: int = 200) -> bool:
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
        for fraction in np.linspace(0, 1, samples):
            x, y = x0 + fraction * (x1 - x0), y0 + fraction * (y1 - y0)
            if abs(x - box.x) < box.width / 2 - 0.02 and abs(y - box.y) < box.height / 2 - 0.02:
                return True
    return False


def save_figure(figure: Figure, path: Path | str) -> Path:
    """Write the figure as PNG atomically (``kd.atomic_write``) and close it; return the path.

    PNG metadata is stripped of the matplotlib version, so equal drawings give equal files.
    """
    try:
        with kd.atomic_write(path) as file:
            figure.savefig(file, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    finally:
        plt.close(figure)
    return Path(path)


def _thousands(count: int) -> str:
    return f"{count / 1000:.1f}k" if count < 10_000 else f"{count / 1000:.0f}k"


def _shape(model: torch.nn.Module, stage: str) -> str:
    """Return the C×H×W shape of one stage's output for a single 28×28 image, as text."""
    with torch.no_grad(), kd.tap(model.eval(), [stage]) as features:
        model(torch.zeros(1, 1, 28, 28))
    return "×".join(str(size) for size in features[stage].shape[1:])


def _models() -> tuple[torch.nn.Module, torch.nn.Module]:
    from kd_utils.recipes import TEACHER_CONFIG

    return kd.models.build_model("TeacherCNN", **TEACHER_CONFIG), kd.StudentCNN()


def teacher_student_figure() -> Figure:
    """The teacher–student framework: the frozen teacher's soft targets and the labels both train the student."""
    teacher, student = _models()
    diagram = Diagram(13.3, 6.9, "The teacher–student framework")
    middle = 3.4
    image = diagram.box(1.0, middle, "input\nimage x", "data", width=1.5, height=1.1)
    big = diagram.box(3.35, 5.0, f"Teacher\nbig CNN\n{_thousands(kd.count_parameters(teacher))} params\nfrozen",
                      "teacher", width=2.2, height=2.0, weight="bold")
    small = diagram.box(3.35, 1.75, f"Student\nsmall CNN\n{_thousands(kd.count_parameters(student))} params",
                        "student", width=1.7, height=1.3, weight="bold")
    soft_targets = diagram.box(6.2, 5.0, "soft targets\nsoftmax(z$_t$ / T)", "teacher", width=2.4, height=1.1)
    student_logits = diagram.box(6.2, 1.75, "student\nlogits z$_s$", "student", width=2.4, height=1.1)
    soft = diagram.box(9.55, 5.0, "soft loss\nT² · KL(teacher ‖ student)", "loss", width=3.1, height=1.1)
    hard = diagram.box(9.55, 1.75, "hard loss\nCE(softmax(z$_s$), y)", "loss", width=3.1, height=1.1)
    label = diagram.box(10.1, middle, "true label y", "data", width=1.9, height=0.75)
    total = diagram.box(12.45, middle, "total\nloss", "loss", width=1.3, height=1.1, weight="bold")
    diagram.arrow(image, big, via=[(image.x, big.y)])
    diagram.arrow(image, small, via=[(image.x, small.y)])
    diagram.arrow(big, soft_targets)
    diagram.arrow(small, student_logits)
    diagram.arrow(soft_targets, soft)
    diagram.arrow(student_logits, soft, "÷ T, softmax", label_at=(7.85, middle))
    diagram.arrow(student_logits, hard)
    diagram.arrow(label, (label.x, hard.edge("top")[1]))
    junction = 11.45
    diagram.arrow(soft, total, "× α", via=[(junction, soft.y), (junction, middle)], label_at=(junction, 4.15))
    diagram.arrow(hard, total, "× (1 − α)", via=[(junction, hard.y), (junction, middle)], label_at=(junction, 2.62))
    bottom = 0.42
    diagram.arrow(total, small, via=[(total.x, bottom), (small.x, bottom)], dashed=True, color=HIGHLIGHT_COLOR,
                  label="gradients update the student only; the teacher stays frozen", label_at=(7.9, bottom))
    return diagram.figure


def distillation_loss_figure() -> Figure:
    """Where the two terms of the distillation loss come from, and how α and T² weight them."""
    diagram = Diagram(13.3, 7.6, "Where the distillation loss comes from")
    diagram.note(6.65, 6.75, r"$\mathrm{loss} = \alpha \cdot T^2 \cdot \mathrm{KL}(p_t^T \,\|\, p_s^T)"
                 r" + (1 - \alpha) \cdot \mathrm{CE}(p_s, y)$", size=FONT_SIZE + 2)
    teacher_row, student_row, hard_row = 5.45, 3.55, 1.4
    image = diagram.box(0.95, 4.5, "image x", "data", width=1.5, height=0.85)
    teacher = diagram.box(3.05, teacher_row, "Teacher\n(frozen)", "teacher", width=2.0, height=1.05, weight="bold")
    student = diagram.box(3.05, student_row, "Student", "student", width=2.0, height=1.05, weight="bold")
    teacher_scaled = diagram.box(5.5, teacher_row, "logits / T\nz$_t$ / T", "teacher", width=1.9, height=1.05)
    student_scaled = diagram.box(5.5, student_row, "logits / T\nz$_s$ / T", "student", width=1.9, height=1.05)
    teacher_soft = diagram.box(7.95, teacher_row, "softmax\n→ soft targets p$_t^T$", "teacher", width=2.5, height=1.05)
    student_soft = diagram.box(7.95, student_row, "softmax\n→ p$_s^T$", "student", width=2.5, height=1.05)
    student_plain = diagram.box(7.95, hard_row, "softmax (T = 1)\n→ p$_s$", "student", width=2.5, height=1.05)
    label = diagram.box(5.5, 0.45, "true label y", "data", width=1.9, height=0.6)
    kl = diagram.box(10.6, 4.5, "KL(p$_t^T$ ‖ p$_s^T$) × T²", "loss", width=2.4, height=1.05)
    ce = diagram.box(10.6, hard_row, "CE(p$_s$, y)", "loss", width=2.4, height=1.05)
    total = diagram.box(12.6, 3.0, "sum\n= loss", "loss", width=1.1, height=1.05, weight="bold")
    diagram.arrow(image, teacher, via=[(image.x, teacher_row)])
    diagram.arrow(image, student, via=[(image.x, student_row)])
    diagram.arrow(teacher, teacher_scaled)
    diagram.arrow(teacher_scaled, teacher_soft)
    diagram.arrow(teacher_soft, kl, via=[(kl.x, teacher_row)])
    diagram.arrow(student, student_scaled)
    diagram.arrow(student_scaled, student_soft)
    diagram.arrow(student_soft, kl, via=[(kl.x, student_row)])
    diagram.arrow(student, student_plain, "student logits z$_s$", via=[(student.x, hard_row)], label_at=(4.45, hard_row))
    diagram.arrow(student_plain, ce)
    diagram.arrow(label, ce, via=[(ce.x, label.y)])
    diagram.arrow(kl, total, "weight α", via=[(total.x, kl.y)], label_at=(total.x, 4.05))
    diagram.arrow(ce, total, "weight 1 − α", via=[(total.x, ce.y)], label_at=(total.x, 1.95))
    diagram.note(3.05, 6.25, "no gradient flows into the teacher", size=SMALL_FONT_SIZE, color=PALETTE["teacher"][1])
    return diagram.figure


def feature_distillation_figure() -> Figure:
    """Feature distillation at block2: the FitNets hint through a 1×1 regressor, and attention transfer."""
    teacher, student = _models()
    teacher_shape, student_shape = _shape(teacher, "block2"), _shape(student, "block2")
    teacher_channels, student_channels = teacher_shape.split("×")[0], student_shape.split("×")[0]
    spatial = "×".join(teacher_shape.split("×")[1:])
    diagram = Diagram(13.3, 7.8, "Feature distillation: match a middle layer, not only the outputs")
    top, bottom, width = 6.2, 0.9, 2.05
    image = diagram.box(0.85, (top + bottom) / 2, "image x", "data", width=1.4, height=0.85)
    teacher_boxes = [
        diagram.box(3.05, top, f"block1\n{_shape(teacher, 'block1')}", "teacher", width=width),
        diagram.box(5.6, top, f"block2 = hint\n{teacher_shape}", "teacher", width=width + 0.2, weight="bold"),
        diagram.box(8.15, top, f"block3\n{_shape(teacher, 'block3')}", "teacher", width=width),
        diagram.box(10.7, top, "classifier\n(teacher)", "teacher", width=width),
    ]
    student_boxes = [
        diagram.box(3.05, bottom, f"block1\n{_shape(student, 'block1')}", "student", width=width),
        diagram.box(5.6, bottom, f"block2 = guided\n{student_shape}", "student", width=width + 0.2, weight="bold"),
        diagram.box(10.7, bottom, "classifier\n(student)", "student", width=width),
    ]
    for row, y in ((teacher_boxes, top), (student_boxes, bottom)):
        diagram.arrow(image, row[0], via=[(image.x, y)])
        for left, right in zip(row[:-1], row[1:]):
            diagram.arrow(left, right)
    hint_block, guided_block = teacher_boxes[1], student_boxes[1]
    regressor = diagram.box(5.6, 2.65, f"regressor r: 1×1 conv\n{student_channels}→{teacher_channels} (+ BatchNorm)",
                            "adapter", width=3.2, height=1.05)
    hint_loss = diagram.box(5.6, 4.45, "hint loss (L2)\n‖r(s) − t‖²", "loss", width=2.3, height=1.05)
    diagram.arrow(guided_block, regressor)
    diagram.arrow(regressor, hint_loss, f"{teacher_channels}×{spatial}", label_at=(6.4, 3.55))
    diagram.arrow(hint_block, hint_loss)
    diagram.note(2.85, 3.55, "FitNets\n(Romero et al., 2015)", size=SMALL_FONT_SIZE, style="italic")
    teacher_map = diagram.box(9.45, 4.45, f"attention map Q$_t$\nmean of a² over {teacher_channels} channels",
                              "teacher", width=3.5, height=1.05)
    student_map = diagram.box(9.45, 2.65, f"attention map Q$_s$\nmean of a² over {student_channels} channels",
                              "student", width=3.5, height=1.05)
    attention_loss = diagram.box(12.45, 3.55, "attention\nloss\n‖Q$_s$ − Q$_t$‖²", "loss", width=1.55, height=1.5)
    diagram.arrow(hint_block, teacher_map)
    diagram.arrow(guided_block, student_map)
    diagram.arrow(teacher_map, attention_loss, via=[(attention_loss.x, teacher_map.y)])
    diagram.arrow(student_map, attention_loss, via=[(attention_loss.x, student_map.y)])
    diagram.note(9.45, 3.55, f"both {spatial}, L2-normalised:\nchannel counts may differ", size=SMALL_FONT_SIZE)
    diagram.note(13.25, 2.15, "attention transfer\n(Zagoruyko &\nKomodakis, 2017)", size=SMALL_FONT_SIZE, ha="right",
                 style="italic")
    return diagram.figure


# ----------------------------------------------------------------------------- probability bar charts


def chart_style() -> dict:
    """Return rc settings for the bar charts: projector-sized fonts, no grid."""
    return {"font.size": FONT_SIZE, "axes.titlesize": FONT_SIZE + 2, "axes.labelsize": FONT_SIZE,
            "xtick.labelsize": SMALL_FONT_SIZE + 1, "ytick.labelsize": SMALL_FONT_SIZE + 1, "axes.grid": False,
            "axes.spines.top": False, "axes.spines.right": False, "axes.edgecolor": ARROW_COLOR}


def temperature_scaling_figure(logits: Sequence[float] = TEMPERATURE_LOGITS,
                               temperatures: Sequence[float] = TEMPERATURES) -> Figure:
    """softmax(z / T) of one fixed logit vector at several temperatures: higher T, flatter targets."""
    logits_tensor = torch.tensor(logits, dtype=torch.float64)
    labels = [f"{value:g}".replace("-", "−") for value in logits]
    with plt.rc_context(chart_style()):
        columns = 2
        rows = int(np.ceil(len(temperatures) / columns))
        figure, axes = plt.subplots(rows, columns, figsize=(12, 4.0 * rows + 0.9), dpi=DPI, sharey=True,
                                    layout="constrained", squeeze=False)
        for axis, temperature in zip(axes.flat, temperatures):
            probabilities = kd.soft_targets(logits_tensor, temperature).tolist()
            kd.plots.plot_probability_bars(axis, probabilities, labels, highlight=0, value_size=SMALL_FONT_SIZE)
            entropy = float(kd.entropy(torch.tensor(probabilities)))
            axis.set_title(f"T = {temperature:g}: entropy {entropy:.2f} nats (max {np.log(len(logits)):.2f})")
        for axis in axes[-1]:
            axis.set_xlabel("class, labelled by its logit z")
        for axis in axes[:, 1:].flat:
            axis.set_ylabel("")
        for axis in axes.flat[len(temperatures):]:
            axis.set_visible(False)
        figure.suptitle("softmax(z / T) of one fixed logit vector: the higher T, the softer the targets",
                        fontsize=TITLE_SIZE - 2, weight="bold")
    return figure


def choose_example(logits: torch.Tensor, labels: torch.Tensor, class_index: int, low: float = 0.5,
                   high: float = 0.95) -> int:
    """Return the index of the first image of `class_index` the teacher gets right with top probability in [low, high].

    Confident but not certain, so the runner-up classes carry visible probability: the
    typical case dark knowledge is about. Falls back to the first correct image of the class.
    """
    probabilities = kd.soft_targets(logits.double(), 1.0)
    confidence, predicted = probabilities.max(dim=1)
    correct = (labels == class_index) & (predicted == class_index)
    if not correct.any():
        raise ValueError(f"the teacher gets no image of class {class_index} right")
    preferred = correct & (confidence >= low) & (confidence <= high)
    return int((preferred if preferred.any() else correct).nonzero()[0])


def dark_knowledge_figure(image: torch.Tensor, logits: torch.Tensor, true_class: int,
                          temperatures: Sequence[float] = DARK_KNOWLEDGE_TEMPERATURES,
                          class_names: Sequence[str] = kd.CLASS_NAMES, caption: str = "test image") -> Figure:
    """The teacher's soft targets for one image at two temperatures, next to the image."""
    logits = logits.double().flatten()
    with plt.rc_context(chart_style()):
        figure, axes = plt.subplots(1, 1 + len(temperatures), figsize=(13.3, 6.2), dpi=DPI, layout="constrained",
                                    gridspec_kw={"width_ratios": [0.8] + [1.0] * len(temperatures)})
        image_axis, *bar_axes = axes
        image_axis.imshow(kd.data.denormalize(image).squeeze().numpy(), cmap="gray_r")
        image_axis.set_title(f"{caption}\ntrue class: {class_names[true_class]}")
        image_axis.set_axis_off()
        for axis, temperature in zip(bar_axes, temperatures):
            probabilities = kd.soft_targets(logits, temperature).tolist()
            kd.plots.plot_probability_bars(axis, probabilities, class_names, highlight=true_class, horizontal=True,
                                      value_size=SMALL_FONT_SIZE)
            axis.set_title(f"T = {temperature:g}" + (": the usual output" if temperature == 1 else ": similar classes show"))
        figure.suptitle("Dark knowledge: the trained teacher's soft targets for one image",
                        fontsize=TITLE_SIZE - 2, weight="bold")
    return figure


def teacher_dark_knowledge_figure(wait_seconds: float = 0.0, class_name: str = "Shirt") -> Figure:
    """Load (or train) the full-mode teacher and draw its soft targets for one test image of `class_name`."""
    if kd.is_smoke():
        raise SystemExit("dark_knowledge shows the full-mode teacher: unset KD_SMOKE (or pass --only for the others)")
    path = kd.teacher_path()
    deadline = time.monotonic() + wait_seconds
    while not path.exists() and time.monotonic() < deadline:
        print(f"waiting for {path.relative_to(ROOT)} (another process is training it) ...", flush=True)
        time.sleep(min(30.0, max(0.0, deadline - time.monotonic())))
    data = kd.load_fashion_mnist()
    teacher, _ = kd.load_or_train_teacher(data)
    logits = kd.predict_logits(teacher, data.test_x)
    class_index = kd.CLASS_NAMES.index(class_name)
    index = choose_example(logits, data.test_y, class_index)
    print(f"dark_knowledge: test image #{index} ({class_name}), logits {[round(v, 2) for v in logits[index].tolist()]}")
    return dark_knowledge_figure(data.test_x[index], logits[index], class_index, caption=f"test image #{index}")


PURE_FIGURES = {
    "teacher_student": teacher_student_figure,
    "temperature_scaling": temperature_scaling_figure,
    "distillation_loss": distillation_loss_figure,
    "feature_distillation": feature_distillation_figure,
}
ALL_IMAGES = [*PURE_FIGURES, "dark_knowledge"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=ALL_IMAGES, help="draw only these images")
    parser.add_argument("--out", type=Path, default=IMAGES_DIR, help="output folder (default: images/)")
    parser.add_argument("--wait", type=float, default=0.0,
                        help="seconds to wait for a teacher checkpoint another process is training (default: train now)")
    args = parser.parse_args(argv)
    names = args.only or ALL_IMAGES
    failures = 0
    for name in names:
        if name == "dark_knowledge":
            figure = teacher_dark_knowledge_figure(args.wait)
        else:
            figure = PURE_FIGURES[name]()
        problems = layout_problems(figure)
        for problem in problems:
            print(f"  layout problem in {name}: {problem}", file=sys.stderr)
        failures += bool(problems)
        path = save_figure(figure, args.out / f"{name}.png")
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
