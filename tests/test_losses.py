
import pytest
import torch
import torch.nn.functional as F

import kd_utils as kd


def test_soft_targets_are_probabilities_that_flatten_as_temperature_rises():
    logits = torch.tensor([[4.0, 1.0, 0.0]])
    cold, warm = kd.soft_targets(logits, 1.0), kd.soft_targets(logits, 10.0)
    assert torch.allclose(cold.sum(), torch.tensor(1.0)) and torch.allclose(warm.sum(), torch.tensor(1.0))
    assert kd.entropy(warm) > kd.entropy(cold)
    assert torch.argmax(warm) == torch.argmax(cold)


def test_kd_loss_is_zero_when_student_equals_teacher():
    logits = torch.randn(8, 10)
    assert kd.kd_loss(logits, logits.clone(), temperature=4.0).item() == pytest.approx(0.0, abs=1e-6)


def test_kd_loss_is_positive_when_student_differs_from_teacher():
    torch.manual_seed(0)
    assert kd.kd_loss(torch.randn(8, 10), torch.randn(8, 10), temperature=2.0).item() > 0


def test_alpha_zero_gives_plain_cross_entropy_and_alpha_one_the_pure_soft_loss():
    torch.manual_seed(1)
    student, teacher = torch.randn(6, 10), torch.randn(6, 10)
    labels = torch.randint(0, 10, (6,))
    assert torch.allclose(kd.distillation_loss(student, teacher, labels, 3.0, alpha=0.0), F.cross_entropy(student, labels))
    assert torch.allclose(kd.distillation_loss(student, teacher, labels, 3.0, alpha=1.0), kd.kd_loss(student, teacher, 3.0))
    mixed = kd.distillation_loss(student, teacher, labels, 3.0, alpha=0.25)
    expected = 0.75 * F.cross_entropy(student, labels) + 0.25 * kd.kd_loss(student, teacher, 3.0)
    assert torch.allclose(mixed, expected)


def test_kd_loss_is_finite_for_extreme_logits():
    student = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], requires_grad=True)
    teacher = torch.tensor([[-1e4, 1e4, 0.0], [1e4, -1e4, 0.0]])
    loss = kd.distillation_loss(student, teacher, torch.tensor([0, 1]), temperature=1.0, alpha=0.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all()


@pytest.mark.parametrize("temperature", [0.0, -1.0])
def test_non_positive_temperature_is_rejected_with_advice(temperature):
    with pytest.raises(ValueError, match="temperature must be > 0"):
        kd.kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), temperature)


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_alpha_outside_zero_one_is_rejected(alpha):
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        kd.distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), 2.0, alpha)


def test_logits_that_are_not_two_dimensional_are_rejected():
    with pytest.raises(ValueError, match="must be 2-D"):
        kd.kd_loss(torch.zeros(3), torch.zeros(3))


def test_student_and_teacher_logits_of_different_shapes_are_rejected():
    with pytest.raises(ValueError, match="same shape"):
        kd.kd_loss(torch.zeros(4, 10), torch.zeros(4, 5))


def test_labels_out_of_range_are_rejected():
    with pytest.raises(ValueError, match=r"class indices in \[0, 9\]"):
        kd.distillation_loss(torch.zeros(2, 10), torch.zeros(2, 10), torch.tensor([0, 10]), 2.0, 0.5)


def test_unlabelled_images_add_nothing_to_the_hard_term():
    torch.manual_seed(2)
    logits = torch.randn(4, 10)
    labels = torch.tensor([3, kd.IGNORE_LABEL, 5, kd.IGNORE_LABEL])
    assert torch.allclose(kd.losses.hard_loss(logits, labels), F.cross_entropy(logits[[0, 2]], labels[[0, 2]]))
    assert kd.losses.hard_loss(logits, torch.full((4,), kd.IGNORE_LABEL)).item() == 0.0


# ----------------------------------------------------------------------------- feature losses


def test_feature_mse_of_different_shapes_names_both_shapes_and_the_adapter():
    with pytest.raises(ValueError) as caught:
        kd.feature_mse(torch.zeros(2, 16, 7, 7), torch.zeros(2, 48, 7, 7))
    message = str(caught.value)
    assert "(2, 16, 7, 7)" in message and "(2, 48, 7, 7)" in message and "HintLoss" in message


def test_hint_regressor_makes_mismatched_shapes_match():
    hint = kd.HintLoss(student_channels=16, teacher_channels=48)
    student, teacher = torch.randn(2, 16, 14, 14), torch.randn(2, 48, 7, 7)
    assert hint.regress(student, (7, 7)).shape == teacher.shape
    assert hint.regress(torch.randn(2, 16, 3, 3), (7, 7)).shape == teacher.shape
    assert torch.isfinite(hint(student, teacher))
    assert kd.count_parameters(hint, trainable_only=True) == 16 * 48 + 2 * 48


def test_attention_transfer_loss_is_zero_for_identical_feature_maps():
    feature = torch.randn(3, 8, 7, 7)
    assert kd.AttentionTransferLoss()(feature, feature.clone()).item() == pytest.approx(0.0, abs=1e-7)


def test_attention_maps_are_unit_length_and_ignore_channel_count():
    maps = kd.attention_map(torch.randn(3, 8, 7, 7))
    assert torch.allclose(maps.norm(dim=1), torch.ones(3))
    assert kd.AttentionTransferLoss()(torch.randn(3, 8, 14, 14), torch.randn(3, 64, 7, 7)) >= 0


def test_cosine_loss_is_zero_for_parallel_vectors_and_projects_other_widths():
    vector = torch.randn(4, 32)
    assert kd.CosineLoss(32, 32)(vector, 2 * vector).item() == pytest.approx(0.0, abs=1e-6)
    assert kd.CosineLoss(16, 64)(torch.randn(4, 16, 7, 7), torch.randn(4, 64, 3, 3)).shape == ()


def test_cosine_loss_without_projection_names_the_fix():
    with pytest.raises(ValueError, match="CosineLoss"):
        kd.CosineLoss(16, 16)(torch.randn(4, 16), torch.randn(4, 64))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_logits_give_the_finite_float32_loss_not_an_overflow(dtype):
    student = torch.tensor([[1e4, -1e4, 0.0], [3.0, 1.0, -2.0]])
    teacher = torch.tensor([[-1e4, 1e4, 0.0], [1.0, 2.0, 0.5]])
    labels = torch.tensor([0, 1])
    for loss in (lambda s, t: kd.kd_loss(s, t, temperature=4.0),
                 lambda s, t: kd.distillation_loss(s, t, labels, temperature=4.0, alpha=0.5)):
        expected = loss(student.to(dtype).double(), teacher.to(dtype).double())  # the same rounded inputs, exactly
        got = loss(student.to(dtype), teacher.to(dtype))
        assert got.dtype == torch.float32 and torch.isfinite(got)
        assert got.double().item() == pytest.approx(expected.item(), rel=1e-5)
