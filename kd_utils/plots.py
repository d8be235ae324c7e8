"""The figures the notebooks show, sized and lettered to read from the back of a classroom."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import ticker
from torch import Tensor

from .data import CLASS_NAMES, denormalize

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
    from .losses import soft_targets

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


def plot_scatter(points: Sequence[dict], x: str, y: str, xlabel: str, ylabel: str, title: str, logx: bool = False):
    """Scatter labelled points (dicts with 'name', x and y keys), e.g. accuracy against latency.

    Each label takes the first of four places around its point where it overlaps no label
    placed before it, so that close points stay readable.
    """
    figure, axis = plt.subplots(figsize=(9, 6))
    for index, point in enumerate(points):
        axis.scatter(point[x], point[y], s=140, color=point.get("color", f"C{index}"), zorder=3)
    if logx:
        axis.set_xscale("log")
        axis.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        axis.xaxis.set_minor_formatter(ticker.NullFormatter())
    axis.set(xlabel=xlabel, ylabel=ylabel, title=title)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    placed = []
    places = [((8, 6), "left"), ((8, -18), "left"), ((-8, 6), "right"), ((-8, -18), "right")]
    for point in points:
        for offset, align in places:
            label = axis.annotate(point["name"], (point[x], point[y]), textcoords="offset points", xytext=offset,
                                  fontsize=12, ha=align)
            box = label.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed) or (offset, align) == places[-1]:
                placed.append(box)
                break
            label.remove()
    return figure


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
    from .stats import CLEAR_GAIN, CLEAR_LOSS

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
                  f"{comparison.mean:+.2f} ± {comparison.half_width:.2f}: {comparison.verdict}", va="center",
                  fontsize=12, color=verdict_color.get(comparison.verdict, COLORS["text"]))
    axis.set(xlabel=xlabel, title=title)
    axis.grid(axis="y", visible=False)
    return figure


__all__ = [name for name in dir() if name.startswith(("plot_", "use_course_style"))]
