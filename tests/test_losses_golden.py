"""Loss tests that can fail: golden values on fixed asymmetric inputs, KL direction, invariances, T² scaling.

The golden values were computed once with an independent NumPy implementation of the formulas
(softmax with the max subtracted, KL = Σ p log(p / q)), not with kd_utils, and are stored here.
"""

import pytest
import torch

import kd_utils as kd

STUDENT = torch.tensor([[2.0, 0.5, -1.0, 0.3], [0.1, 1.2, -0.4, 2.2], [-1.5, 0.0, 0.8, 0.4]])
TEACHER = torch.tensor([[3.0, 1.0, -2.0, 0.0], [-1.0, 2.0, 1.5, 0.5], [0.2, -0.3, 2.5, 1.0]])
LABELS = torch.tensor([0, 3, 2])
# T -> T² · mean KL(teacher ‖ student), and the reversed direction KL(student ‖ teacher)
GOLDEN_KD = {1.0: (0.3697312256728384, 0.4168684951135854), 2.0: (0.485183862692268, 0.5055059338440125),
             4.0: (0.5357972459121035, 0.5414119138629191)}
GOLDEN_CE = 0.5401735433851572
GOLDEN_DISTILLATION_T4 = {0.25: 0.5390794690168939, 0.5: 0.5379853946486304}


@pytest.mark.parametrize("temperature", sorted(GOLDEN_KD))
def test_kd_loss_matches_its_golden_value_and_not_the_reversed_kl(temperature):
    forward, reverse = GOLDEN_KD[temperature]
    value = kd.kd_loss(STUDENT, TEACHER, temperature).item()
    assert value == pytest.approx(forward, rel=1e-5)
    if temperature == 1.0:  # where the two directions differ by more than 10 %
        assert value != pytest.approx(reverse, rel=0.05)


def test_the_kl_direction_is_teacher_to_student():
    # swapping the arguments computes KL(student ‖ teacher), the golden "reverse" value
    assert kd.kd_loss(TEACHER, STUDENT, 1.0).item() == pytest.approx(GOLDEN_KD[1.0][1], rel=1e-5)


@pytest.mark.parametrize("alpha", sorted(GOLDEN_DISTILLATION_T4))
def test_distillation_loss_matches_its_golden_value(alpha):
    value = kd.distillation_loss(STUDENT, TEACHER, LABELS, temperature=4.0, alpha=alpha).item()
    assert value == pytest.approx(GOLDEN_DISTILLATION_T4[alpha], rel=1e-5)
    assert kd.losses.hard_loss(STUDENT, LABELS).item() == pytest.approx(GOLDEN_CE, rel=1e-5)


def test_adding_a_constant_to_a_row_of_logits_changes_no_loss():
    shift_student = torch.tensor([[5.0], [-3.0], [0.7]])
    shift_teacher = torch.tensor([[-2.0], [10.0], [1.5]])
    for temperature in (1.0, 4.0):
        assert kd.kd_loss(STUDENT + shift_student, TEACHER + shift_teacher, temperature).item() == pytest.approx(
            kd.kd_loss(STUDENT, TEACHER, temperature).item(), rel=1e-5)
    assert kd.distillation_loss(STUDENT + shift_student, TEACHER, LABELS, 2.0, 0.5).item() == pytest.approx(
        kd.distillation_loss(STUDENT, TEACHER, LABELS, 2.0, 0.5).item(), rel=1e-5)


def _gradient_norm(temperature: float, scale: bool) -> float:
    generator = torch.Generator().manual_seed(0)
    teacher = torch.randn(256, 10, generator=generator)
    student = torch.randn(256, 10, generator=generator).requires_grad_()
    kd.kd_loss(student, teacher, temperature, scale=scale).backward()
    return student.grad.norm().item()


@pytest.mark.parametrize("temperature", [8.0, 16.0, 32.0])
def test_t_squared_holds_the_soft_gradient_within_ten_percent_at_high_temperature(temperature):
    # For T well above the logits' spread, T²·KL has a gradient ≈ (z_s − z_t − mean) / classes, independent of T.
    assert _gradient_norm(temperature, True) / _gradient_norm(4.0, True) == pytest.approx(1.0, rel=0.10)
    # Without T² it falls as 1 / T².
    ratio = _gradient_norm(temperature, False) / _gradient_norm(4.0, False)
    assert ratio == pytest.approx((4.0 / temperature) ** 2, rel=0.10)


def test_distillation_leaves_the_teachers_weights_and_batchnorm_statistics_unchanged(data):
    kd.set_seed(0)
    teacher = kd.StudentCNN(width=4)
    teacher.train()  # even a teacher left in training mode must not learn or update its running statistics
    before = {key: value.clone() for key, value in teacher.state_dict().items()}
    kd.set_seed(1)
    kd.train(kd.StudentMLP(hidden=16), data.train_x[:256], data.train_y[:256], teacher=teacher, temperature=4.0,
             alpha=0.5, epochs=1, batch_size=64, progress=False, verbose=False)
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), f"distillation changed the teacher's {key}"


def test_alpha_zero_with_a_teacher_trains_exactly_like_plain_training(data):
    x, y = data.train_x[:256], data.train_y[:256]
    teacher_logits = torch.randn(len(x), 10)
    models = []
    for settings in ({}, {"teacher_logits": teacher_logits, "alpha": 0.0, "temperature": 3.0}):
        kd.set_seed(2)
        model = kd.StudentMLP(hidden=16)
        kd.train(model, x, y, epochs=1, batch_size=64, seed=2, progress=False, verbose=False, **settings)
        models.append(model)
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.equal(a, b)


# ----------------------------------------------------------------------------- bad input, named


def test_an_empty_batch_is_refused_instead_of_returning_nan():
    with pytest.raises(ValueError, match="empty batch"):
        kd.kd_loss(torch.zeros(0, 10), torch.zeros(0, 10))
    with pytest.raises(ValueError, match="empty batch"):
        kd.distillation_loss(torch.zeros(0, 10), torch.zeros(0, 10), torch.zeros(0, dtype=torch.long))


@pytest.mark.parametrize("dtype", [torch.float32, torch.int32])
def test_labels_of_the_wrong_dtype_name_labels_and_the_fix(dtype):
    with pytest.raises(TypeError, match=r"labels must hold integer class indices.*labels\.long\(\)"):
        kd.distillation_loss(STUDENT, TEACHER, LABELS.to(dtype), 2.0, 0.5)


@pytest.mark.parametrize("temperature, error", [(float("inf"), ValueError), (float("nan"), ValueError),
                                                ("4", TypeError)])
def test_a_temperature_that_is_not_a_finite_positive_number_is_refused(temperature, error):
    with pytest.raises(error, match="temperature"):
        kd.kd_loss(STUDENT, TEACHER, temperature)


@pytest.mark.parametrize("loss", [kd.HintLoss(8, 16), kd.AttentionTransferLoss(), kd.CosineLoss(8, 16)],
                         ids=["hint", "attention", "cosine"])
def test_feature_losses_refuse_features_of_different_batch_sizes_before_broadcasting(loss):
    with pytest.raises(ValueError, match="same batch size"):
        loss(torch.randn(1, 8, 7, 7), torch.randn(4, 16, 7, 7))


def test_cosine_loss_names_the_mismatched_widths_instead_of_a_matrix_error():
    with pytest.raises(ValueError, match=r"got a student feature 12 wide; build it as kd.CosineLoss\(12, 16\)"):
        kd.CosineLoss(8, 16)(torch.randn(4, 12, 7, 7), torch.randn(4, 16, 7, 7))


def test_hint_loss_names_the_channels_it_was_built_for():
    with pytest.raises(ValueError, match=r"build it as kd.HintLoss\(12, 16\)"):
        kd.HintLoss(8, 16)(torch.randn(4, 12, 7, 7), torch.randn(4, 16, 7, 7))
