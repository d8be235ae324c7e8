"""Tests of the figure helpers whose behaviour a reader relies on: colour scales and readable labels."""

import re

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.text import Text

import kd_utils as kd


def test_a_centred_heat_map_has_a_colour_scale_symmetric_around_the_centre():
    gains = torch.tensor([[-0.28, -0.08], [-0.24, -1.12]])
    figure = kd.plots.plot_heatmap(gains, ["T=1", "T=2"], ["α=0.5", "α=0.9"], "gain", "α", "T", cmap="RdBu", center=0.0)
    low, high = figure.axes[0].get_images()[0].get_clim()
    assert low == pytest.approx(-1.12) and high == pytest.approx(1.12)  # all losses land on the "loss" side
    plt.close(figure)


def test_heat_map_annotations_are_white_on_dark_cells_and_black_on_light_ones():
    figure = kd.plots.plot_heatmap(torch.tensor([[0.0, 1.0]]), ["row"], ["a", "b"], "t", "x", "y", cmap="Blues")
    colours = [text.get_color() for text in figure.axes[0].texts]
    assert colours == ["black", "white"]
    plt.close(figure)


# The scorecard of notebook 05 (latency in µs, test accuracy in %): CNN students within a few pixels of each other.
SCORECARD = [("teacher", 502, 92.26), ("mlp_scratch", 53, 89.27), ("mlp_kd", 51, 89.92), ("mlp_ls", 37, 89.26),
             ("cnn_scratch", 204, 87.85), ("cnn_kd", 200, 88.09), ("cnn_hint_kd", 202, 85.33), ("cnn_at_kd", 177, 84.95),
             ("cnn_cosine_kd", 161, 85.28), ("cnn_fitnets", 203, 83.72)]


def scorecard_points(groups: bool = True) -> list[dict]:
    def family(name):
        return "teacher" if name == "teacher" else "MLP student" if name.startswith("mlp") else "CNN student"

    return [{"name": name, "x": x, "y": y, **({"group": family(name)} if groups else {})} for name, x, y in SCORECARD]


def drawn_labels(figure) -> dict:
    """Return {label text: its text box in display pixels}, the leader line left out."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    return {label.get_text(): Text.get_window_extent(label, renderer) for label in figure.axes[0].texts}


def box_distance(box, point) -> float:
    dx = max(box.x0 - point[0], 0.0, point[0] - box.x1)
    dy = max(box.y0 - point[1], 0.0, point[1] - box.y1)
    return float(np.hypot(dx, dy))


@pytest.mark.parametrize("logx", [True, False])
def test_each_scatter_label_is_nearer_its_own_point_than_any_other_point(logx):
    points = scorecard_points()
    figure = kd.plots.plot_scatter(points, "x", "y", "latency", "accuracy", "t", logx=logx)
    boxes = drawn_labels(figure)
    axis = figure.axes[0]
    pixels = {p["name"]: axis.transData.transform((p["x"], p["y"])) for p in points}
    assert sorted(boxes) == sorted(pixels), "one label per point, each with its own name"
    for name, box in boxes.items():
        own = box_distance(box, pixels[name])
        nearest_other = min(box_distance(box, pixel) for other, pixel in pixels.items() if other != name)
        assert own < nearest_other, f"{name}'s label is {own:.1f} px from its point but {nearest_other:.1f} px from another"
    plt.close(figure)


def test_scatter_labels_do_not_overlap_each_other_or_cover_a_point():
    figure = kd.plots.plot_scatter(scorecard_points(), "x", "y", "latency", "accuracy", "t", logx=True)
    boxes = list(drawn_labels(figure).values())
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    axis = figure.axes[0]
    for point in scorecard_points():
        pixel = axis.transData.transform((point["x"], point["y"]))
        assert all(not box.contains(*pixel) for box in boxes), f"a label covers {point['name']}"
    plt.close(figure)


def test_scatter_points_on_top_of_each_other_share_one_label():
    points = [{"name": "a", "x": 400, "y": 89.27}, {"name": "b", "x": 400, "y": 89.26}, {"name": "c", "x": 1000, "y": 92}]
    figure = kd.plots.plot_scatter(points, "x", "y", "size", "accuracy", "t", logx=True)
    assert sorted(drawn_labels(figure)) == ["a, b", "c"]  # the higher point first
    plt.close(figure)


def test_scatter_colours_mean_a_group_named_in_a_legend_beside_the_data():
    figure = kd.plots.plot_scatter(scorecard_points(), "x", "y", "latency", "accuracy", "t", logx=True,
                             colors={"teacher": kd.plots.COLORS["teacher"]})
    axis = figure.axes[0]
    legend = axis.get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["teacher", "MLP student", "CNN student"]
    colours = [tuple(collection.get_facecolor()[0]) for collection in axis.collections]
    assert len(set(colours)) == 3 and colours[0] == matplotlib.colors.to_rgba(kd.plots.COLORS["teacher"])
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    assert not legend.get_window_extent(renderer).overlaps(axis.get_window_extent(renderer)), "the legend covers data"
    plt.close(figure)


def test_scatter_without_groups_draws_one_colour_and_no_legend():
    figure = kd.plots.plot_scatter(scorecard_points(groups=False), "x", "y", "latency", "accuracy", "t")
    axis = figure.axes[0]
    assert axis.get_legend() is None
    assert len({tuple(colour) for collection in axis.collections for colour in collection.get_facecolor()}) == 1
    plt.close(figure)


def test_scatter_refuses_points_of_which_only_some_have_a_group():
    points = scorecard_points()
    del points[0]["group"]
    with pytest.raises(ValueError, match="group"):
        kd.plots.plot_scatter(points, "x", "y", "latency", "accuracy", "t")


@pytest.mark.parametrize("low, high", [(150, 420), (37, 502), (41, 1088), (5_506, 550_600), (2, 3_000_000)])
def test_log_axis_tick_labels_are_plain_numbers_that_do_not_overlap(low, high):
    points = [{"name": f"p{i}", "x": x, "y": float(i)} for i, x in enumerate(np.geomspace(low, high, 5))]
    figure = kd.plots.plot_scatter(points, "x", "y", "images (log scale)", "y", "t", logx=True)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    labels = [label for label in figure.axes[0].xaxis.get_ticklabels() if label.get_visible() and label.get_text()]
    assert len(labels) >= 2, "a log axis needs at least two labelled ticks to be read"
    for label in labels:  # "5506×10²" or "$\\mathdefault{10^{3}}$" would fail here
        assert re.fullmatch(r"[0-9][0-9,]*(\.[0-9]+)?", label.get_text()), label.get_text()
    boxes = [label.get_window_extent(renderer) for label in labels]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    plt.close(figure)
