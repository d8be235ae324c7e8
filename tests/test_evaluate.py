import pytest
import torch

import kd_utils as kd


def test_accuracy_of_logits_counts_top1_matches():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0]])
    assert kd.accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)


def test_accuracy_of_a_model_equals_accuracy_of_its_logits(data):
    model = kd.StudentMLP()
    logits = kd.predict_logits(model, data.test_x)
    assert logits.shape == (len(data.test_y), 10)
    assert kd.accuracy(model, data.test_x, data.test_y) == kd.accuracy(logits, data.test_y)
    assert torch.equal(kd.predictions(model, data.test_x), logits.argmax(1))


def test_confusion_matrix_counts_true_by_predicted():
    confusion = kd.confusion_matrix(torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 0]), num_classes=3)
    assert confusion.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert confusion.sum() == 4


def test_most_confused_pairs_lists_the_largest_off_diagonal_cells():
    confusion = torch.tensor([[50, 7, 1], [2, 40, 0], [9, 0, 30]])
    assert kd.most_confused_pairs(confusion, ["a", "b", "c"], top=2) == [("c", "a", 9), ("a", "b", 7)]


def test_agreement_is_one_for_identical_predictions_and_checks_shapes():
    logits = torch.randn(20, 10)
    assert kd.agreement(logits, logits * 2) == 1.0
    with pytest.raises(ValueError):
        kd.agreement(logits, logits[:5])


def test_ece_is_zero_when_confidence_equals_accuracy_and_large_when_overconfident():
    labels = torch.tensor([0, 1, 0, 1])
    certain_and_right = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert kd.expected_calibration_error(certain_and_right, labels) == pytest.approx(0.0)
    certain_and_half_wrong = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert kd.expected_calibration_error(certain_and_half_wrong, labels) == pytest.approx(0.5)


def test_fit_temperature_recovers_the_temperature_of_overconfident_logits():
    torch.manual_seed(0)
    true_logits = torch.randn(4000, 10) * 2
    labels = torch.distributions.Categorical(logits=true_logits).sample()
    assert kd.fit_temperature(true_logits * 3, labels) == pytest.approx(3.0, rel=0.1)


def test_parameter_count_size_and_flops_of_a_linear_layer():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    assert kd.count_parameters(model) == 7850
    assert kd.size_on_disk(model) > 7850 * 4
    assert kd.flops_per_image(model) == 2 * 784 * 10


def test_latency_reports_seconds_per_image_at_a_fixed_thread_count():
    result = kd.latency(kd.StudentMLP(), batch_size=4, threads=1, min_run_time=0.05)
    assert result["threads"] == 1 and result["seconds_per_image"] > 0
    assert result["images_per_second"] == pytest.approx(4 / result["seconds_per_batch"])
