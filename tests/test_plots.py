"""Tests of the figure helpers whose behaviour a reader relies on: colour scales and readable labels."""

import matplotlib.pyplot as plt
import pytest
import torch

import kd_utils as kd


def test_a_centred_heat_map_has_a_colour_scale_symmetric_around_the_centre():
    gains = torch.tensor([[-0.28, -0.08], [-0.24, -1.12]])
    figure = kd.plot_heatmap(gains, ["T=1", "T=2"], ["α=0.5", "α=0.9"], "gain", "α", "T", cmap="RdBu", center=0.0)
    low, high = figure.axes[0].get_images()[0].get_clim()
    assert low == pytest.approx(-1.12) and high == pytest.approx(1.12)  # all losses land on the "loss" side
    plt.close(figure)


def test_heat_map_annotations_are_white_on_dark_cells_and_black_on_light_ones():
    figure = kd.plot_heatmap(torch.tensor([[0.0, 1.0]]), ["row"], ["a", "b"], "t", "x", "y", cmap="Blues")
    colours = [text.get_color() for text in figure.axes[0].texts]
    assert colours == ["black", "white"]
    plt.close(figure)


def test_scatter_labels_of_nearby_points_do_not_overlap():
    points = [{"name": "cnn_hint_kd", "x": 238, "y": 85.18}, {"name": "cnn_cosine_kd", "x": 299, "y": 85.15},
              {"name": "cnn_at_kd", "x": 385, "y": 84.95}, {"name": "teacher", "x": 741, "y": 92.31}]
    figure = kd.plot_scatter(points, "x", "y", "latency", "accuracy", "t", logx=True)
    renderer = figure.canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in figure.axes[0].texts]
    assert len(boxes) == len(points)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    plt.close(figure)
