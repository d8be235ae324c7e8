"""The figures the notebooks show, sized and lettered to read from the back of a classroom."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import ticker
from torch import Tensor

from .data import CLASS_NAMES, denormalize
from .losses import soft_targets
from .stats import CLEAR_GAIN, CLEAR_LOSS

# The course's one palette: the notebooks' figures and scripts/draw_images.py's diagrams both take it from here.
BLUE, RED, GREEN, ORANGE, GREY = "#1f4e79", "#d9534f", "#5cb85c", "#f0ad4e", "#9e9e9e"
COLORS = {"teacher": BLUE, "scratch": GREY, "distilled": RED, "student": RED, "bar": BLUE, "highlight": RED,
          "text": "#111111", "line": "#333333"}
# (fill, edge) of a diagram's box per role: light fills under near-black text keep the contrast high on a projector.
BOX_COLORS = {"teacher": ("#d6e6f5", BLUE), "student": ("#fadcda", "#b52b27"), "loss": ("#ffefc2", "#8a5a00"),
              "data": ("#ebebeb", "#404040"), "adapter": ("#dcefd2", "#2e6b1a"), "op": ("#ffffff", "#404040")}


def use_course_style() -> None:
    """Set matplotlib defaults that read on a projector: large fonts, thick lines, tight layout."""
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "font.size": 13,
            "axes.titlesize": 15,
            "axes.labelsize": 14,
            "legend.fontsize": 12,
            "xtick.labelsize": 12,
            "ytick.labelsize": 12,
            "lines.linewidth": 2.2,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "figure.autolayout": True,
        }
    )


def _image(image: Tensor) -> np.ndarray:
    return denormalize(image).squeeze().cpu().numpy()


def plot_class_grid(images: Tensor, labels: Tensor, per_class: int = 8, class_names: Sequence[str] = CLASS_NAMES):
    """Show `per_class` images of every class, one row per class, named on the left (one mosaic image)."""
    rows = []
    for label in range(len(class_names)):
        members = (labels == label).nonzero().flatten()[:per_class]
        row = torch.ones(per_class, 28, 28)
        row[: len(members)] = denormalize(images[members]).squeeze(1)
        rows.append(torch.nn.functional.pad(row, (1, 1, 1, 1), value=1.0).permute(1, 0, 2).reshape(30, -1))
    mosaic = torch.cat(rows).numpy()
    figure, axis = plt.subplots(figsize=(per_class * 0.95 + 2.2, len(class_names) * 0.95))
    axis.imshow(mosaic, cmap="gray_r", vmin=0, vmax=1)
    axis.set_yticks([30 * row + 15 for row in range(len(class_names))], class_names)
    axis.set_xticks([])
    axis.grid(False)
    for spine in axis.spines.values():
        spine.set_visible(False)
    axis.set_title("Fashion-MNIST: one row per class")
    return figure


def plot_history(histories, title: str = "Training curves", terms: bool = False):
    """Plot training loss and train/validation accuracy per epoch for one History or several.

    ``terms=True`` adds each term of the loss (hard, soft, every feature term, unweighted) as a
    dashed line beside the total, so the hard and soft terms can be seen to move.
    """
    histories = histories if isinstance(histories, (list, tuple)) else [histories]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(13, 4.5))
    for index, history in enumerate(histories):
        color = f"C{index}"
        epochs = history.column("epoch")
        loss_axis.plot(epochs, history.column("loss"), "o-", color=color, label=history.name + (" (total)" if terms else ""))
        for number, (term, values) in enumerate(history.terms.items() if terms else []):  # one colour per term if one run
            loss_axis.plot(epochs, values, ["s--", "^:", "v-.", "D--", "x:"][number % 5], alpha=0.8,
                           color=color if len(histories) > 1 else f"C{number + 1}", label=f"{history.name}: {term}")
        accuracy_axis.plot(epochs, [100 * a for a in history.column("train_accuracy")], "o--", color=color, alpha=0.6,
                           label=f"{history.name} (train)")
        accuracy_axis.plot(epochs, [100 * a for a in history.column("val_accuracy")], "o-", color=color,
                           label=f"{history.name} (validation)")
    loss_axis.set(title="Training loss", xlabel="epoch", ylabel="loss")
    accuracy_axis.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
    for axis in (loss_axis, accuracy_axis):
        axis.set_xticks(histories[0].column("epoch"))
        axis.legend()
    figure.suptitle(title, fontsize=16)
    return figure


def plot_confusion_matrix(confusion: Tensor, class_names: Sequence[str] = CLASS_NAMES, title: str = "Confusion matrix",
                          normalize: bool = True):
    """Draw a confusion matrix (rows: true class, columns: predicted), in % of each row if `normalize`."""
    matrix = confusion.double()
    if normalize:
        matrix = 100 * matrix / matrix.sum(dim=1, keepdim=True).clamp_min(1)
    figure, axis = plt.subplots(figsize=(9.5, 8))
    image = axis.imshow(matrix.numpy(), cmap="Blues")
    _annotate(axis, matrix.numpy(), "{:.0f}", image)
    axis.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    axis.set_yticks(range(len(class_names)), class_names)
    axis.set(xlabel="predicted class", ylabel="true class", title=title)
    axis.grid(False)
    figure.colorbar(image, ax=axis, label="% of the true class" if normalize else "images")
    return figure


def _annotate(axis, matrix: np.ndarray, fmt: str, image) -> None:
    """Write each cell's value on it, white on dark cells and black on light ones."""
    for (row, column), value in np.ndenumerate(matrix):
        red, green, blue, _ = image.cmap(image.norm(value))
        dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
        axis.text(column, row, fmt.format(value), ha="center", va="center", fontsize=10,
                  color="white" if dark else "black")


def plot_heatmap(matrix: Tensor | np.ndarray, row_labels: Sequence, column_labels: Sequence, title: str,
                 xlabel: str, ylabel: str, fmt: str = "{:.2f}", cmap: str = "viridis", colorbar_label: str = "",
                 center: float | None = None):
    """Draw an annotated heat map (a sweep of hyperparameters, a soft-target matrix).

    With `center` (say 0 for gains and losses) the colour scale is symmetric around it, so a
    diverging colormap shows values above and below it in different colours.
    """
    matrix = np.asarray(matrix, dtype=float)
    figure, axis = plt.subplots(figsize=(max(6, 0.9 * len(column_labels) + 3), max(4.5, 0.7 * len(row_labels) + 2)))
    limits = {}
    if center is not None:
        reach = max(float(np.abs(matrix - center).max()), 1e-12)
        limits = {"vmin": center - reach, "vmax": center + reach}
    image = axis.imshow(matrix, cmap=cmap, aspect="auto", **limits)
    _annotate(axis, matrix, fmt, image)
    axis.set_xticks(range(len(column_labels)), column_labels, rotation=45 if len(str(column_labels[0])) > 4 else 0,
                    ha="right" if len(str(column_labels[0])) > 4 else "center")
    axis.set_yticks(range(len(row_labels)), row_labels)
    axis.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axis.grid(False)
    figure.colorbar(image, ax=axis, label=colorbar_label)
    return figure


def plot_images(images: Tensor, titles: Sequence[str], columns: int = 6, suptitle: str = ""):
    """Show images in a grid with a title above each (misclassified examples, say)."""
    rows = max(1, int(np.ceil(len(images) / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 2.3, rows * 3.1), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, title in zip(axes.flat, images, titles):
        axis.imshow(_image(image), cmap="gray_r")
        axis.set_title(title, fontsize=11)
    if suptitle:
        figure.suptitle(suptitle, fontsize=16)
    return figure


def _probability_text(probability: float) -> str:
    return "<0.001" if probability < 0.001 else f"{probability:.3f}" if probability < 0.1 else f"{probability:.2f}"


def plot_probability_bars(axis, probabilities: Sequence[float], labels: Sequence[str], highlight: int | None = None,
                          horizontal: bool = False, value_size: float | str = "small") -> None:
    """Draw one probability distribution on `axis` as bars with each value written on its bar.

    `highlight` draws one class (the true one, say) in ``COLORS["highlight"]``, the rest in ``COLORS["bar"]``;
    `horizontal` puts the classes down the side, first at the top.
    """
    positions = np.arange(len(probabilities))
    colors = [COLORS["highlight"] if index == highlight else COLORS["bar"] for index in positions]
    if horizontal:
        axis.barh(positions, probabilities, color=colors, height=0.7)
        axis.set_yticks(positions, labels)
        axis.set_xlim(0, 1.22)
        axis.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0", "0.25", "0.5", "0.75", "1"])
        axis.set_ylim(len(positions) - 0.5, -0.6)
        axis.set_xlabel("probability")
        for position, probability in zip(positions, probabilities):
            axis.text(probability + 0.02, position, _probability_text(probability), va="center", fontsize=value_size)
    else:
        axis.bar(positions, probabilities, color=colors, width=0.7)
        axis.set_xticks(positions, labels)
        axis.set_ylim(0, 1.12)
        axis.set_ylabel("probability")
        for position, probability in zip(positions, probabilities):
            axis.text(position, probability + 0.02, _probability_text(probability), ha="center", va="bottom",
                      fontsize=value_size)


def plot_soft_targets(logits: Tensor, temperatures: Sequence[float], class_names: Sequence[str] = CLASS_NAMES,
                      true_class: int | None = None, title: str = "Soft targets at several temperatures"):
    """Draw softmax(logits / T) as bars with their values, one panel per temperature, with class names."""

    figure, axes = plt.subplots(1, len(temperatures), figsize=(3.6 * len(temperatures) + 0.6, 4.8), sharey=True)
    axes = np.atleast_1d(axes)
    for axis, temperature in zip(axes, temperatures):
        plot_probability_bars(axis, soft_targets(logits.float().flatten(), temperature).tolist(), class_names,
                              highlight=true_class, horizontal=True)
        axis.set_title(f"T = {temperature:g}")
        axis.grid(False)
    if true_class is not None:
        from matplotlib.patches import Patch

        axes[-1].legend(handles=[Patch(color=COLORS["highlight"], label="true class"),
                                 Patch(color=COLORS["bar"], label="other classes")], loc="best")  # clear of the bars
    figure.suptitle(title, fontsize=16)
    return figure


def plot_reliability(tables: dict[str, dict[str, Tensor]], eces: dict[str, float], title: str = "Reliability diagram"):
    """Draw reliability diagrams (accuracy against confidence per bin) side by side, with each ECE."""
    figure, axes = plt.subplots(1, len(tables), figsize=(6 * len(tables), 5.5), sharey=True)
    axes = np.atleast_1d(axes)
    for axis, (label, table) in zip(axes, tables.items()):
        edges = table["edges"].numpy()
        centres = (edges[:-1] + edges[1:]) / 2
        width = edges[1] - edges[0]
        has = table["counts"].numpy() > 0
        accuracy, confidence = table["accuracy"].numpy()[has], table["confidence"].numpy()[has]
        over = confidence > accuracy
        axis.bar(centres[has], accuracy, width=width * 0.95, color=BLUE, label="accuracy")
        bottom, height = np.minimum(accuracy, confidence), np.abs(confidence - accuracy)
        axis.bar(centres[has][over], height[over], bottom=bottom[over], width=width * 0.95, color=RED, alpha=0.55,
                 label="over-confident gap")
        axis.bar(centres[has][~over], height[~over], bottom=bottom[~over], width=width * 0.95, facecolor="none",
                 edgecolor=ORANGE, hatch="//", linewidth=1.5, label="under-confident gap")
        axis.plot([0, 1], [0, 1], "k--", lw=1.5, label="perfect calibration")
        axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", title=f"{label}: ECE = {100 * eces[label]:.2f} %")
        axis.legend(loc="upper left")
    axes[0].set_ylabel("accuracy")
    figure.suptitle(title, fontsize=16)
    return figure


def plot_feature_maps(feature_sets: dict[str, Tensor], channels: int = 6, title: str = "Feature maps"):
    """Show the first `channels` feature maps of one image for each labelled feature tensor (C, H, W)."""
    figure, axes = plt.subplots(len(feature_sets), channels, figsize=(channels * 1.9, len(feature_sets) * 2.1), squeeze=False)
    for row, (label, feature) in enumerate(feature_sets.items()):
        for column in range(channels):
            axis = axes[row, column]
            axis.axis("off")
            if column < feature.shape[0]:
                axis.imshow(feature[column].detach().cpu().numpy(), cmap="magma")
        axes[row, 0].set_title(label, loc="left", fontsize=12)
    figure.suptitle(title, fontsize=16)
    return figure


# Marker shapes by group, so that groups stay apart in grey print and for readers who do not tell red from green.
GROUP_MARKERS = ("o", "s", "^", "D", "v", "P")
GROUP_COLORS = (BLUE, RED, GREEN, ORANGE, GREY, "#6a3d9a")


def plot_scatter(points: Sequence[dict], x: str, y: str, xlabel: str, ylabel: str, title: str, logx: bool = False,
                 colors: dict[str, str] | None = None, figsize: tuple[float, float] = (11, 6.5)):
    """Scatter named points (dicts with 'name', x and y keys, optionally 'group'), e.g. accuracy against latency.

    Each name is written beside its own point and joined to it by a leader line, at the nearest free place where
    it is nearer its own point than any other, overlaps no other name and covers no point; points drawn on top of
    one another (closer than a marker's radius) share one name, "a, b". Points with a 'group' get one colour and
    marker shape per group (`colors` maps a group to its colour) and a legend outside the axes; without groups all
    points are drawn alike and there is no legend. `logx` puts x on a log axis whose ticks are plain numbers
    (1, 2, 5 × 10^k, thinned until no two labels touch).
    """
    groups = list(dict.fromkeys(point.get("group") for point in points))
    if None in groups and len(groups) > 1:
        raise ValueError("give every point a 'group' or none: a point without one would have no colour in the legend")
    figure, axis = plt.subplots(figsize=figsize)
    marker_size = 110  # points², as scatter's `s`
    if groups != [None]:
        colors = {**dict(zip(groups, GROUP_COLORS * len(groups))), **(colors or {})}
        for group, marker in zip(groups, GROUP_MARKERS * len(groups)):
            members = [point for point in points if point["group"] == group]
            axis.scatter([p[x] for p in members], [p[y] for p in members], s=marker_size, marker=marker,
                         color=colors[group], edgecolor="white", linewidth=0.8, label=group, zorder=3)
        axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)  # beside the axes, not on data
    else:
        axis.scatter([p[x] for p in points], [p[y] for p in points], s=marker_size, color=BLUE, zorder=3)
    if logx:
        axis.set_xscale("log")
    axis.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axis.margins(x=0.06, y=0.14)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    _widen(axis, right=_room_right(axis, points, x, y, marker_size, renderer))
    figure.canvas.draw()
    figure.set_layout_engine("none")  # the labels are placed in pixels: nothing may move the axes after this
    for _ in range(3):  # a name that fits only outside the axes widens them on that side; then all are placed again
        if logx:
            _readable_log_ticks(axis, figure)
        places = _place_labels(axis, points, x, y, marker_size, renderer)
        frame = axis.bbox
        overshoot = {"left": max(frame.x0 + 6 - box[0] for box, *_ in places),
                     "right": max(box[2] - frame.x1 + 6 for box, *_ in places),
                     "bottom": max(frame.y0 + 6 - box[1] for box, *_ in places),
                     "top": max(box[3] - frame.y1 + 6 for box, *_ in places)}
        if max(overshoot.values()) <= 4:
            break
        _widen(axis, **{side: pixels for side, pixels in overshoot.items() if pixels > 4})
    _draw_labels(axis, places, marker_size)
    return figure


def _point_radius(axis, marker_size: float) -> float:
    """Return the radius in pixels of a scatter marker of area `marker_size` points²."""
    return np.sqrt(marker_size) / 2 * axis.figure.dpi / 72


def _clusters(points: Sequence[dict], axis, x: str, y: str, marker_size: float) -> list[list[int]]:
    """Return the points grouped where markers sit on top of one another (closer than a radius), top one first."""
    pixels = axis.transData.transform([(p[x], p[y]) for p in points])
    radius = _point_radius(axis, marker_size)
    parent = list(range(len(points)))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(points)):
        for j in range(i + 1, len(points)):
            if np.hypot(*(pixels[i] - pixels[j])) < radius:
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(points)):
        groups.setdefault(root(i), []).append(i)
    return [sorted(members, key=lambda i: (-pixels[i][1], pixels[i][0])) for members in groups.values()]


def _room_right(axis, points, x, y, marker_size, renderer) -> float:
    """Return how many pixels the axes lack on the right for every name to fit to the right of its point."""
    pixels = axis.transData.transform([(p[x], p[y]) for p in points])
    needed = 0.0
    for members in _clusters(points, axis, x, y, marker_size):
        width = _text_size(axis, ", ".join(points[i]["name"] for i in members), renderer)[0]
        rightmost = max(pixels[i][0] for i in members)
        needed = max(needed, rightmost + _point_radius(axis, marker_size) + 20 + width - axis.bbox.x1)
    return needed


def _text_size(axis, text: str, renderer, fontsize: float = 12) -> tuple[float, float]:
    """Return (width, height) in pixels of `text` as the labels draw it."""
    probe = axis.text(0, 0, text, fontsize=fontsize)
    box = probe.get_window_extent(renderer)
    probe.remove()
    return box.width, box.height


def _widen(axis, left: float = 0.0, right: float = 0.0, bottom: float = 0.0, top: float = 0.0) -> None:
    """Extend the axis ranges so that the given pixels of the axes lie beyond the data on each side (log axes too)."""
    for low_pixels, high_pixels, axis_of, size, get, set_ in (
            (left, right, axis.xaxis, axis.bbox.width, axis.get_xlim, axis.set_xlim),
            (bottom, top, axis.yaxis, axis.bbox.height, axis.get_ylim, axis.set_ylim)):
        low_pixels, high_pixels = max(low_pixels, 0.0), max(high_pixels, 0.0)
        if low_pixels + high_pixels == 0 or low_pixels + high_pixels > 0.6 * size:
            continue  # nothing asked, or the data would be squeezed into too little of the axes
        scale = axis_of.get_transform()
        low, high = scale.transform(get())
        per_pixel = (high - low) / (size - low_pixels - high_pixels)
        set_(*scale.inverted().transform([low - low_pixels * per_pixel, high + high_pixels * per_pixel]))


def _readable_log_ticks(axis, figure) -> None:
    """Label a log x axis with plain numbers, as many as fit without two labels touching.

    Candidates run from dense to sparse: 1…9 × 10^k, then 1, 2, 3, 5 × 10^k, 1, 2, 5 × 10^k, 1, 3 × 10^k, the powers of ten, every
    second power; the first whose labels do not overlap (at most 9 of them) wins. Minor ticks stay, unlabelled.
    """
    low, high = axis.get_xlim()
    decades = range(int(np.floor(np.log10(low))) - 1, int(np.ceil(np.log10(high))) + 1)
    candidates = [[m * 10.0**k for k in decades for m in mantissas]
                  for mantissas in ((1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 5), (1, 2, 5), (1, 3), (1,))]
    candidates += [[10.0**k for k in decades if k % step == 0] for step in (2, 3, 5)]
    chosen = None
    for ticks in candidates:
        inside = [t for t in ticks if low <= t <= high]
        if len(inside) < 2 or len(inside) > 9:
            continue
        axis.xaxis.set_major_locator(ticker.FixedLocator(inside))
        axis.xaxis.set_major_formatter(ticker.FuncFormatter(_plain_number))
        axis.xaxis.set_minor_formatter(ticker.NullFormatter())
        figure.canvas.draw()
        if not _tick_labels_overlap(axis, figure.canvas.get_renderer()):
            chosen = inside
            break
    if chosen is None:  # less than a decade or too many decades: a few evenly spaced plain numbers
        values = ticker.MaxNLocator(nbins=4).tick_values(low, high)
        axis.xaxis.set_major_locator(ticker.FixedLocator([v for v in values if low <= v <= high and v > 0]))
        axis.xaxis.set_major_formatter(ticker.FuncFormatter(_plain_number))
        axis.xaxis.set_minor_formatter(ticker.NullFormatter())
    axis.set_xlim(low, high)


def _plain_number(value: float, _position=None) -> str:
    """Write a tick value without exponent notation: 0.05, 200, 5,000, 100,000."""
    return f"{value:,.0f}" if value >= 10 else f"{value:g}"


def _tick_labels_overlap(axis, renderer) -> bool:
    boxes = [label.get_window_extent(renderer) for label in axis.xaxis.get_ticklabels()
             if label.get_visible() and label.get_text()]
    return any(a.x1 + 4 > b.x0 and b.x1 + 4 > a.x0 for i, a in enumerate(boxes) for b in boxes[i + 1:])


def _box_point_distance(box: tuple[float, float, float, float], point) -> float:
    """Return the distance in pixels from a point to a box (x0, y0, x1, y1); 0 inside it."""
    x0, y0, x1, y1 = box
    dx = max(x0 - point[0], 0.0, point[0] - x1)
    dy = max(y0 - point[1], 0.0, point[1] - y1)
    return float(np.hypot(dx, dy))


def _segments_cross(a, b, c, d) -> bool:
    """Return True when segment ab crosses segment cd (touching ends do not count)."""
    def side(p, q, r):
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    return side(a, b, c) * side(a, b, d) < 0 and side(c, d, a) * side(c, d, b) < 0


def _segment_point_distance(a, b, point) -> float:
    a, b, point = np.asarray(a, float), np.asarray(b, float), np.asarray(point, float)
    length = float(np.dot(b - a, b - a))
    t = 0.0 if length == 0 else float(np.clip(np.dot(point - a, b - a) / length, 0.0, 1.0))
    return float(np.hypot(*(a + t * (b - a) - point)))


def _segment_hits_box(a, b, box) -> bool:
    x0, y0, x1, y1 = box
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    inside = any(x0 <= p[0] <= x1 and y0 <= p[1] <= y1 for p in (a, b))
    return inside or any(_segments_cross(a, b, corners[i], corners[(i + 1) % 4]) for i in range(4))


def _place_labels(axis, points, x, y, marker_size, renderer) -> list[tuple]:
    """Return where each cluster's name goes: (box, text, point, tip, ha, va) in pixels, the best of many places.

    A place costs its distance from the point, plus far more for every rule it breaks (nearer another point, over
    another name or a point, outside the axes, a leader line crossing another); several orders are tried.
    """
    pixels = axis.transData.transform([(p[x], p[y]) for p in points])
    radius = _point_radius(axis, marker_size)
    frame = axis.bbox
    clusters = _clusters(points, axis, x, y, marker_size)
    labels = [(", ".join(points[i]["name"] for i in members), members) for members in clusters]
    sizes = [_text_size(axis, text, renderer) for text, _ in labels]
    angles = np.deg2rad([0, 20, -20, 40, -40, 60, -60, 90, -90, 120, -120, 150, -150, 180])
    distances = radius + np.array([10, 20, 32, 50, 72, 100, 135])  # the nearest still shows a leader line

    def candidates(index):
        anchor = pixels[labels[index][1]].mean(axis=0)
        width, height = sizes[index]
        for angle_rank, angle in enumerate(angles):
            dx, dy = np.cos(angle), np.sin(angle)
            for distance in distances:
                tip = anchor + distance * np.array([dx, dy])
                ha = "left" if dx > 0.3 else "right" if dx < -0.3 else "center"
                va = "bottom" if dy > 0.3 else "top" if dy < -0.3 else "center"
                x0 = tip[0] if ha == "left" else tip[0] - width if ha == "right" else tip[0] - width / 2
                y0 = tip[1] if va == "bottom" else tip[1] - height if va == "top" else tip[1] - height / 2
                yield (x0, y0, x0 + width, y0 + height), tip, ha, va, distance + 6 * angle_rank

    def cost(index, box, tip, placed):
        """The penalty of a place: broken rules weigh far more than distance, so a legal place always wins."""
        members = labels[index][1]
        own = min(_box_point_distance(box, pixels[i]) for i in members)
        anchor = pixels[members].mean(axis=0)
        others = [i for i in range(len(points)) if i not in members]
        penalty = 0.0
        if any(_box_point_distance(box, pixels[i]) < own + 3 for i in others):
            penalty += 1e6  # it would read as another point's name
        if any(_box_point_distance(box, point) < radius + 2 for point in pixels):
            penalty += 1e5  # it would cover a point
        x0, y0, x1, y1 = box
        if x0 < frame.x0 + 2 or x1 > frame.x1 - 2 or y0 < frame.y0 + 2 or y1 > frame.y1 - 2:
            penalty += 1e5
        for other_box, other_tip, other_anchor in placed:
            ox0, oy0, ox1, oy1 = other_box
            if x0 < ox1 + 3 and ox0 < x1 + 3 and y0 < oy1 + 2 and oy0 < y1 + 2:
                penalty += 1e6  # two names on top of each other
            if _segments_cross(anchor, tip, other_anchor, other_tip) or _segment_hits_box(anchor, tip, other_box) \
                    or _segment_hits_box(other_anchor, other_tip, box):
                penalty += 1e4  # leader lines that cross read as swapped names
        if any(_segment_point_distance(anchor, tip, pixels[i]) < radius for i in others):
            penalty += 1e4
        return penalty

    def arrangement(order):
        placed, chosen, total = [], {}, 0.0
        for index in order:
            anchor = pixels[labels[index][1]].mean(axis=0)
            best = min(((cost(index, box, tip, placed) + length, box, tip, ha, va)
                        for box, tip, ha, va, length in candidates(index)), key=lambda option: option[0])
            total += best[0]
            placed.append((best[1], best[2], anchor))
            chosen[index] = best
        return total, chosen

    crowding = [sum(np.hypot(*(pixels[labels[i][1]].mean(axis=0) - pixels[j])) < 150 for j in range(len(points)))
                for i in range(len(labels))]
    heights = [pixels[members].mean(axis=0)[1] for _, members in labels]
    orders = [sorted(range(len(labels)), key=key) for key in
              (lambda i: -crowding[i], lambda i: -heights[i], lambda i: heights[i], lambda i: i)]
    _, chosen = min((arrangement(order) for order in orders), key=lambda result: result[0])
    return [(chosen[index][1], text, pixels[members].mean(axis=0), chosen[index][2], chosen[index][3], chosen[index][4])
            for index, (text, members) in enumerate(labels)]


def _draw_labels(axis, places, marker_size: float) -> None:
    """Write each placed name with its leader line (offsets in points, so a saved copy at another dpi agrees)."""
    points_per_pixel = 72 / axis.figure.dpi
    radius = _point_radius(axis, marker_size)
    for _box, text, anchor, tip, ha, va in places:
        axis.annotate(text, axis.transData.inverted().transform(anchor), xytext=(tip - anchor) * points_per_pixel,
                      textcoords="offset points", ha=ha, va=va, fontsize=12, zorder=4,
                      arrowprops={"arrowstyle": "-", "color": "0.45", "lw": 0.9, "shrinkA": 1,
                                  "shrinkB": radius * points_per_pixel})


def plot_bars_with_error(names: Sequence[str], means: Sequence[float], stds: Sequence[float], ylabel: str, title: str,
                         ylim: tuple[float, float] | None = None, reference: float | None = None, reference_label: str = ""):
    """Bar chart of means with ± one standard deviation (results over several seeds)."""
    figure, axis = plt.subplots(figsize=(max(7, 1.8 * len(names)), 5))
    colors = [f"C{index}" for index in range(len(names))]
    axis.bar(names, means, yerr=stds, capsize=8, color=colors, alpha=0.85)
    for index, (mean, std) in enumerate(zip(means, stds)):
        axis.text(index, mean + std, f"{mean:.2f}", ha="center", va="bottom", fontsize=12)
    if reference is not None:
        axis.axhline(reference, color="k", ls="--", lw=1.5, label=reference_label)
        axis.legend(loc="lower right")
    if ylim:
        axis.set_ylim(*ylim)
    axis.set(ylabel=ylabel, title=title)
    return figure


def plot_comparisons(comparisons: dict, title: str, xlabel: str = "gain over the baseline (pp)"):
    """Draw paired comparisons (``kd.compare``): each seed's difference as a dot, the mean and its 95 % interval.

    One row per comparison, zero marked, the verdict written at the end of its own row, so a gain of a few tenths
    of a point looks as large as it is, next to the seeds' spread, and no legend covers the data.
    """

    names = list(comparisons)
    figure, axis = plt.subplots(figsize=(11, 1.0 + 0.85 * len(names)))
    verdict_color = {CLEAR_GAIN: "#2e7d32", CLEAR_LOSS: "#b52b27"}  # darker than the palette: text on white
    for row, name in enumerate(names):
        comparison = comparisons[name]
        y = len(names) - 1 - row
        axis.errorbar([comparison.mean], [y], xerr=[[comparison.half_width], [comparison.half_width]], fmt="D", ms=9,
                      capsize=7, color=COLORS["line"], zorder=3)
        axis.scatter(comparison.differences, [y + 0.18] * comparison.seeds, s=36, color=BLUE, alpha=0.8, zorder=4)
    axis.axvline(0, color="k", lw=1.2)
    axis.set_yticks(range(len(names)), names[::-1])
    axis.set_ylim(-0.7, len(names) - 0.3)
    low = min(min(c.low, *c.differences) for c in comparisons.values())
    high = max(max(c.high, *c.differences) for c in comparisons.values())
    span = max(high, 0) - min(low, 0)
    axis.set_xlim(min(low, 0) - 0.05 * span, max(high, 0) + 0.65 * span)
    for row, name in enumerate(names):
        comparison = comparisons[name]
        axis.text(max(comparison.high, *comparison.differences) + 0.03 * span, len(names) - 1 - row,
                  f"{comparison.mean:+.{comparison.digits}f} ± {comparison.half_width:.{comparison.digits}f}: "
                  f"{comparison.verdict}", va="center",
                  fontsize=12, color=verdict_color.get(comparison.verdict, COLORS["text"]))
    axis.set(xlabel=xlabel, title=title)
    axis.grid(axis="y", visible=False)
    return figure


__all__ = [name for name in dir() if name.startswith(("plot_", "use_course_style"))]
