"""Tests of the kd_utils pieces notebook 02 (temperature scaling) leans on: entropy, reliability, its figures."""

import math

import matplotlib.pyplot as plt
import pytest
import torch

import kd_utils as kd


def test_entropy_is_zero_for_one_hot_and_log_k_for_uniform():
    one_hot = torch.eye(10)[:3]
    uniform = torch.full((2, 10), 0.1)
    assert torch.allclose(kd.entropy(one_hot), torch.zeros(3))
    assert torch.allclose(kd.entropy(uniform), torch.full((2,), math.log(10)))


def test_entropy_of_soft_targets_never_falls_as_temperature_rises():
    torch.manual_seed(0)
    logits = torch.randn(64, 10) * 5
    entropies = torch.stack([kd.entropy(kd.soft_targets(logits, t)) for t in (0.5, 1, 2, 4, 8, 20)])
    assert (entropies[1:] >= entropies[:-1] - 1e-6).all()
    assert (entropies <= math.log(10) + 1e-6).all()


def test_reliability_puts_every_prediction_in_one_bin_with_its_confidence_and_accuracy():
    probabilities = torch.tensor([[0.95, 0.05], [0.92, 0.08], [0.35, 0.65], [0.38, 0.62]])
    labels = torch.tensor([0, 1, 1, 1])
    table = kd.reliability(probabilities, labels, bins=10)
    assert table["counts"].sum() == 4 and len(table["edges"]) == 11
    top_bin, middle_bin = 9, 6  # confidences 0.95, 0.92 → [0.9, 1.0]; 0.65, 0.62 → [0.6, 0.7)
    assert table["counts"][top_bin] == 2 and table["counts"][middle_bin] == 2
    assert table["confidence"][top_bin].item() == pytest.approx(0.935)
    assert table["accuracy"][top_bin].item() == pytest.approx(0.5)
    assert table["accuracy"][middle_bin].item() == pytest.approx(1.0)


def test_reliability_counts_a_confidence_of_exactly_one_in_the_last_bin():
    table = kd.reliability(torch.tensor([[1.0, 0.0]]), torch.tensor([0]), bins=15)
    assert table["counts"][-1] == 1


def test_dividing_logits_by_a_fitted_temperature_keeps_every_prediction():
    torch.manual_seed(0)
    logits = torch.randn(500, 10) * 4
    labels = torch.distributions.Categorical(logits=logits / 4).sample()
    temperature = kd.fit_temperature(logits, labels)
    assert temperature > 1  # the logits were four times too sharp
    assert torch.equal(kd.soft_targets(logits, temperature).argmax(1), logits.argmax(1))


def test_temperature_figures_have_one_panel_per_temperature_or_table():
    logits = torch.tensor([2.0, -1.0, 0.5, 0.0, 1.0, -2.0, 3.0, -3.0, 0.0, -2.5])
    figure = kd.plots.plot_soft_targets(logits, [1, 4, 20], true_class=6)
    assert [axis.get_title() for axis in figure.axes] == ["T = 1", "T = 4", "T = 20"]
    probabilities = kd.soft_targets(logits.repeat(4, 1), 1.0)
    labels = torch.tensor([6, 6, 0, 2])
    tables = {"before": kd.reliability(probabilities, labels), "after": kd.reliability(probabilities, labels)}
    eces = {name: kd.expected_calibration_error(probabilities, labels) for name in tables}
    assert len(kd.plots.plot_reliability(tables, eces).axes) == 2
    heatmap = kd.plots.plot_heatmap(torch.eye(3), ["a", "b", "c"], ["a", "b", "c"], "t", "x", "y")
    assert heatmap.axes[0].get_title() == "t"
    plt.close("all")
