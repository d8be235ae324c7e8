"""The one yardstick: paired per-seed differences, sample standard deviation, one declared rule for the words."""

from __future__ import annotations

import math
import statistics

import matplotlib
import pytest

import kd_utils as kd
from kd_utils.stats import t_quantile

matplotlib.use("Agg")


def test_the_standard_deviation_is_the_sample_one_everywhere():
    values = [89.1, 89.3, 89.0, 89.6, 89.2]
    assert kd.stats.sample_std(values) == pytest.approx(statistics.stdev(values))
    assert kd.stats.sample_std(values) > statistics.pstdev(values)
    assert kd.mean_std(values) == pytest.approx((statistics.mean(values), statistics.stdev(values)))


def test_compare_pairs_the_results_seed_by_seed():
    comparison = kd.compare([90.0, 91.0, 92.0], [89.0, 91.5, 90.0])
    assert comparison.differences == pytest.approx((1.0, -0.5, 2.0))
    assert comparison.mean == pytest.approx(0.8333333)
    assert comparison.std == pytest.approx(statistics.stdev([1.0, -0.5, 2.0]))
    # the interval is t(n - 1) times the standard error: 4.303 for 3 seeds
    assert comparison.half_width == pytest.approx(4.303 * comparison.std / math.sqrt(3))
    assert comparison.estimate() == "+0.83 ± 3.13 pp"
    assert str(comparison) == "+0.83 ± 3.13 pp (95 % interval over seeds, 3 seeds): within the noise"


def test_a_consistent_gain_is_a_clear_gain_and_a_consistent_loss_a_clear_loss():
    assert kd.compare([2.1, 2.3, 1.9, 2.2, 2.0], [0, 0, 0, 0, 0]).verdict == "clear gain"
    assert kd.compare([0, 0, 0, 0, 0], [2.1, 2.3, 1.9, 2.2, 2.0]).verdict == "clear loss"
    assert kd.compare([0.5, -0.4, 0.3, -0.2, 0.1], [0, 0, 0, 0, 0]).verdict == "within the noise"


def test_the_between_run_spread_widens_the_interval_and_can_change_the_verdict():
    method, baseline = [89.9, 90.0, 89.8, 90.1, 89.9], [89.4, 89.5, 89.3, 89.6, 89.4]  # +0.5 on every seed
    seeds_only = kd.compare(method, baseline)
    with_machines = kd.compare(method, baseline, between_run_std=0.25)
    assert seeds_only.verdict == "clear gain"
    assert with_machines.half_width == pytest.approx(t_quantile(4) * 0.25)  # the seeds' spread is zero here
    assert with_machines.verdict == "within the noise"
    assert "seeds and machines" in str(with_machines) and "seeds and machines" not in str(seeds_only)


def test_every_verdict_is_one_of_the_declared_words():
    assert kd.VERDICTS == ("clear gain", "within the noise", "clear loss")


@pytest.mark.parametrize(("method", "baseline", "message"), [
    ([90.0], [89.0], "at least 2 seeds"),
    ([], [], "at least 2 seeds"),
    ([90.0, 91.0, 92.0], [89.0, 90.0], "one baseline result per seed"),
    ([90.0, float("nan")], [89.0, 90.0], "finite"),
    ([90.0, 91.0], [89.0, float("inf")], "finite"),
])
def test_compare_refuses_what_is_not_a_paired_comparison(method, baseline, message):
    with pytest.raises(ValueError, match=message):
        kd.compare(method, baseline)


@pytest.mark.parametrize(("seeds", "message"), [([], "empty"), ([0, 1, 1], "repeats \\[1\\]"), ([0, 1, 2], "3 seeds")])
def test_a_seed_list_that_is_empty_repeats_a_seed_or_does_not_match_is_refused(seeds, message):
    with pytest.raises(ValueError, match=message):
        kd.compare([90.0, 91.0], [89.0, 90.0], seeds=seeds)


@pytest.mark.parametrize("between", [-0.1, float("nan")])
def test_a_between_run_spread_that_is_negative_or_not_finite_is_refused(between):
    with pytest.raises(ValueError, match="between_run_std"):
        kd.compare([90.0, 91.0], [89.0, 90.0], between_run_std=between)


def test_train_methods_refuses_a_repeated_seed(data):
    with pytest.raises(ValueError, match="repeats"):
        kd.train_methods(16, [0, 0], {"scratch": kd.Objective()}, data.train_x[:64], data.train_y[:64],
                         evaluate={}, epochs=1, batch_size=32)


def test_train_methods_gives_each_method_the_students_of_the_same_seeds(data):
    x, y = data.train_x[:512], data.train_y[:512]
    trained = kd.train_methods(16, [3, 4], {"a": kd.Objective(), "b": kd.Objective()}, x, y,
                               evaluate={"test": (data.test_x, data.test_y)}, epochs=1, batch_size=64)
    # two methods with the same objective: the same seed must give the same student, whatever its place in the cohort
    assert trained.of("a") == trained.of("b")
    assert len(trained.of("a")) == 2 and trained.seeds == [3, 4]


def test_train_methods_trains_every_method_of_a_seed_on_the_same_subset(data):
    trained = kd.train_methods(16, [0, 1], {"a": kd.Objective(), "b": kd.Objective()}, data.train_x, data.train_y,
                               subset_size=100, evaluate={"test": (data.test_x, data.test_y)}, epochs=2, batch_size=32)
    assert trained.of("a") == trained.of("b")
    assert trained.of("a")[0] != trained.of("a")[1]  # another seed, another subset and initialisation


def test_plot_comparisons_writes_each_verdict_on_the_row_of_its_own_comparison():
    comparisons = {"big": kd.compare([3.0, 3.2, 2.9], [0, 0, 0]), "none": kd.compare([0.2, -0.3, 0.1], [0, 0, 0]),
                   "loss": kd.compare([-2.0, -2.2, -1.9], [0, 0, 0])}
    figure = kd.plots.plot_comparisons(comparisons, title="t")
    axis = figure.axes[0]
    ticks = {label.get_text(): y for label, y in zip(axis.get_yticklabels(), axis.get_yticks())}
    for name, comparison in comparisons.items():
        texts = [t for t in axis.texts if t.get_text().endswith(comparison.verdict)]
        assert len(texts) == 1
        x, y = texts[0].get_position()
        assert y == ticks[name]  # on its own row
        assert x > max(comparison.high, *comparison.differences)  # right of its own interval and dots
    low, high = axis.get_xlim()
    assert low < 0 < high  # zero is always on the axis
    matplotlib.pyplot.close(figure)
