"""Notebook 06's machinery: decoupled KD (Zhao et al., CVPR 2022), ensemble logits, cohort members with DKD or their own teacher.

The golden values were computed once with an independent NumPy implementation of the paper's
formulas (softmax with the max subtracted; TCKD = KL of the binary [p_y, 1 − p_y] distributions;
NCKD = KL of the non-target probabilities renormalised to sum to 1; both times T²), not with
kd_utils, and are stored here.
"""

import math

import pytest
import torch
import torch.nn.functional as F

import kd_utils as kd
from kd_utils.cohort import MLPCohort, train_cohort
from kd_utils.data import batch_indices
from kd_utils.losses import Objective

STUDENT = torch.tensor([[2.0, 0.5, -1.0, 0.3, 1.1], [0.1, 1.2, -0.4, 2.2, -0.7], [-1.5, 0.0, 0.8, 0.4, 2.0]])
TEACHER = torch.tensor([[3.0, 1.0, -2.0, 0.0, 0.5], [-1.0, 2.0, 1.5, 0.5, -0.3], [0.2, -0.3, 2.5, 1.0, 0.9]])
LABELS = torch.tensor([0, 3, 2])
# T -> (TCKD, NCKD) batch means, and the same with student and teacher swapped (the reversed KL)
GOLDEN = {1.0: ((0.39401944539144096, 0.28405316044344814), (0.4354673536521867, 0.2700887688607907)),
          2.0: ((0.3520830104281642, 0.36003146753060555), (0.3714953623469717, 0.3602176283532635)),
          4.0: ((0.3003646673168255, 0.39752284313996467), (0.3087180760145501, 0.39856187641291685))}
GOLDEN_PER_IMAGE_T2 = ((0.182048, 0.52200438, 0.35219665), (0.14193021, 0.42374152, 0.51442267))
GOLDEN_DKD = {(1.0, 8.0, 4.0): 3.4805474124365428, (0.5, 4.0, 2.0): 1.6161673753365042}  # (α, β, T) -> loss


def _random_batch(rows=64, classes=10, scale=3.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    student = torch.randn(rows, classes, generator=generator, dtype=torch.float64) * scale
    teacher = torch.randn(rows, classes, generator=generator, dtype=torch.float64) * scale
    return student, teacher, torch.randint(0, classes, (rows,), generator=generator)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0, 10.0])
def test_kd_equals_tckd_plus_the_teachers_non_target_mass_times_nckd_for_every_image(temperature):
    student, teacher, labels = _random_batch()
    tckd, nckd = kd.decoupled_kd_terms(student, teacher, labels, temperature, reduction="none")
    non_target_mass = 1 - kd.soft_targets(teacher, temperature).gather(1, labels[:, None]).squeeze(1)
    for i in range(len(labels)):  # kd_loss of a one-image batch is that image's KD loss
        kd_of_image = kd.kd_loss(student[i:i + 1], teacher[i:i + 1], temperature)
        assert (tckd[i] + non_target_mass[i] * nckd[i]).item() == pytest.approx(kd_of_image.item(), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_the_identity_holds_for_the_batch_mean_only_with_each_images_weight_inside_the_mean(temperature):
    student, teacher, labels = _random_batch(seed=1)
    tckd, nckd = kd.decoupled_kd_terms(student, teacher, labels, temperature, reduction="none")
    non_target_mass = 1 - kd.soft_targets(teacher, temperature).gather(1, labels[:, None]).squeeze(1)
    batch_kd = kd.kd_loss(student, teacher, temperature).item()
    assert (tckd + non_target_mass * nckd).mean().item() == pytest.approx(batch_kd, rel=1e-12)
    # the means of the terms, weighted by the mean weight, are not the KD loss
    naive = tckd.mean() + non_target_mass.mean() * nckd.mean()
    assert abs(naive.item() - batch_kd) > 1e-3
    mean_tckd, mean_nckd = kd.decoupled_kd_terms(student, teacher, labels, temperature)
    assert mean_tckd.item() == pytest.approx(tckd.mean().item(), rel=1e-12)
    assert mean_nckd.item() == pytest.approx(nckd.mean().item(), rel=1e-12)


@pytest.mark.parametrize("temperature", sorted(GOLDEN))
def test_tckd_and_nckd_match_their_golden_values_and_not_the_reversed_kl(temperature):
    (tckd_golden, nckd_golden), (tckd_reverse, nckd_reverse) = GOLDEN[temperature]
    tckd, nckd = kd.decoupled_kd_terms(STUDENT, TEACHER, LABELS, temperature)
    assert tckd.item() == pytest.approx(tckd_golden, rel=1e-5)
    assert nckd.item() == pytest.approx(nckd_golden, rel=1e-5)
    swapped = kd.decoupled_kd_terms(TEACHER, STUDENT, LABELS, temperature)
    assert (swapped[0].item(), swapped[1].item()) == pytest.approx((tckd_reverse, nckd_reverse), rel=1e-5)
    if temperature == 1.0:  # where the two directions differ by more than 4 %
        assert tckd.item() != pytest.approx(tckd_reverse, rel=0.04)
        assert nckd.item() != pytest.approx(nckd_reverse, rel=0.04)


def test_per_image_terms_match_their_golden_values():
    tckd, nckd = kd.decoupled_kd_terms(STUDENT, TEACHER, LABELS, 2.0, reduction="none")
    assert tckd.tolist() == pytest.approx(GOLDEN_PER_IMAGE_T2[0], rel=1e-5)
    assert nckd.tolist() == pytest.approx(GOLDEN_PER_IMAGE_T2[1], rel=1e-5)


@pytest.mark.parametrize("alpha, beta, temperature", sorted(GOLDEN_DKD))
def test_dkd_loss_matches_its_golden_value_and_weights_the_two_terms(alpha, beta, temperature):
    loss = kd.losses.dkd_loss(STUDENT, TEACHER, LABELS, alpha=alpha, beta=beta, temperature=temperature)
    assert loss.item() == pytest.approx(GOLDEN_DKD[alpha, beta, temperature], rel=1e-5)
    tckd, nckd = kd.decoupled_kd_terms(STUDENT, TEACHER, LABELS, temperature)
    assert kd.losses.dkd_loss(STUDENT, TEACHER, LABELS, 1.0, 0.0, temperature).item() == pytest.approx(tckd.item(), rel=1e-6)
    assert kd.losses.dkd_loss(STUDENT, TEACHER, LABELS, 0.0, 1.0, temperature).item() == pytest.approx(nckd.item(), rel=1e-6)


def test_each_term_sees_only_its_own_part_of_the_distribution():
    student, teacher, labels = _random_batch(rows=16, seed=2)
    tckd, nckd = kd.decoupled_kd_terms(teacher, teacher, labels, 2.0)
    assert tckd.item() == pytest.approx(0.0, abs=1e-12) and nckd.item() == pytest.approx(0.0, abs=1e-12)
    # raising only the target logit changes how sure the student is of the target class, not how it ranks the others
    sharper = teacher.clone()
    sharper[torch.arange(16), labels] += 3.0
    tckd, nckd = kd.decoupled_kd_terms(sharper, teacher, labels, 2.0)
    assert tckd.item() > 0.1 and nckd.item() == pytest.approx(0.0, abs=1e-12)
    # reshuffling the non-target logits while keeping p_target changes only NCKD
    shuffled = teacher.clone()
    for row, label in enumerate(labels.tolist()):
        others = [c for c in range(10) if c != label]
        shuffled[row, others] = teacher[row, others].flip(0)
    tckd, nckd = kd.decoupled_kd_terms(shuffled, teacher, labels, 2.0)
    assert tckd.item() == pytest.approx(0.0, abs=1e-12) and nckd.item() > 0.1


def test_nckd_never_moves_the_target_logit_and_tckd_never_reshuffles_the_wrong_classes():
    student, teacher, labels = _random_batch(rows=32, seed=3)
    student.requires_grad_()
    tckd, nckd = kd.decoupled_kd_terms(student, teacher, labels, 2.0)
    (nckd_gradient,) = torch.autograd.grad(nckd, student, retain_graph=True)
    assert nckd_gradient[torch.arange(32), labels].abs().max() < 1e-12  # NCKD: zero gradient on the target logit
    (tckd_gradient,) = torch.autograd.grad(tckd, student)
    # TCKD depends on p_y alone: on the wrong classes its gradient is proportional to their probabilities, so a
    # step along it leaves their renormalised shares as they were
    probabilities = (student.detach() / 2.0).softmax(1)  # at the same T
    others = torch.ones_like(probabilities, dtype=torch.bool)
    others[torch.arange(32), labels] = False
    ratio = tckd_gradient[others].reshape(32, 9) / probabilities[others].reshape(32, 9)
    assert torch.allclose(ratio, ratio[:, :1].expand(-1, 9), rtol=1e-9, atol=1e-12)


def test_extreme_logits_give_finite_exact_terms_and_gradients():
    student = torch.tensor([[1e4, 0.0, -1e4]], requires_grad=True)
    teacher = torch.tensor([[-1e4, 1e4, 0.0]])
    labels = torch.tensor([1])
    tckd, nckd = kd.decoupled_kd_terms(student, teacher, labels, 1.0)
    # the teacher is sure of class 1, the student gives it e^-1e4; the non-target rankings are opposite
    assert tckd.item() == pytest.approx(1e4, rel=1e-6) and nckd.item() == pytest.approx(2e4, rel=1e-6)
    kd.losses.dkd_loss(student, teacher, labels).backward()
    assert torch.isfinite(student.grad).all()


def test_the_teacher_gets_no_gradient():
    student = STUDENT.clone().requires_grad_()
    teacher = TEACHER.clone().requires_grad_()
    kd.losses.dkd_loss(student, teacher.detach(), LABELS).backward()
    assert student.grad is not None and teacher.grad is None


@pytest.mark.parametrize("change, error, message", [
    ({"labels": LABELS.float()}, TypeError, r"labels\.long\(\)"),
    ({"labels": torch.tensor([0, 3, 5])}, ValueError, r"class indices in \[0, 4\]"),
    ({"labels": torch.tensor([0, -1, 2])}, ValueError, "teacher_logits.argmax"),
    ({"labels": torch.tensor([0, 3])}, ValueError, "one label per row"),
    ({"teacher_logits": TEACHER[:2]}, ValueError, "same shape"),
    ({"student_logits": STUDENT[0]}, ValueError, "2-D"),
    ({"temperature": 0.0}, ValueError, "temperature must be > 0"),
    ({"temperature": "4"}, TypeError, "temperature must be a number"),
    ({"alpha": -1.0}, ValueError, "alpha .*weight of TCKD.* >= 0"),
    ({"beta": float("nan")}, ValueError, "beta .*weight of NCKD.*finite"),
    ({"beta": "8"}, TypeError, "beta .*must be a number"),
])
def test_bad_input_is_refused_with_the_argument_named(change, error, message):
    arguments = {"student_logits": STUDENT, "teacher_logits": TEACHER, "labels": LABELS, "alpha": 1.0, "beta": 8.0,
                 "temperature": 4.0}
    arguments.update(change)
    with pytest.raises(error, match=message):
        kd.losses.dkd_loss(**arguments)


def test_decoupled_kd_terms_refuses_an_unknown_reduction_and_a_single_class():
    with pytest.raises(ValueError, match="reduction"):
        kd.decoupled_kd_terms(STUDENT, TEACHER, LABELS, 2.0, reduction="sum")
    with pytest.raises(ValueError, match="at least 2 classes"):
        kd.decoupled_kd_terms(STUDENT[:, :1], TEACHER[:, :1], torch.zeros(3, dtype=torch.long), 2.0)


def test_ensemble_logits_equal_the_ensemble_models_output_and_average_probabilities():
    images = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    members = []
    for seed in (0, 1, 2):
        kd.set_seed(seed)
        members.append(kd.StudentMLP(hidden=16).eval())
    member_logits = [member(images).detach() for member in members]
    combined = kd.ensemble_logits(member_logits)
    assert torch.allclose(combined, kd.models.Ensemble(members)(images).detach(), atol=1e-6)
    mean_probabilities = torch.stack([logits.softmax(-1) for logits in member_logits]).mean(0)
    assert torch.allclose(combined.softmax(-1), mean_probabilities, atol=1e-6)
    assert torch.allclose(combined.exp().sum(-1), torch.ones(8), atol=1e-5)  # already log-probabilities
    assert not torch.allclose(combined, torch.stack(member_logits).mean(0), atol=1e-3)  # not the mean of the logits


def test_ensemble_logits_refuses_no_members_and_members_of_different_shapes():
    with pytest.raises(ValueError, match="non-empty list"):
        kd.ensemble_logits([])
    with pytest.raises(ValueError, match=r"member_logits\[1\] has shape"):
        kd.ensemble_logits([torch.zeros(4, 10), torch.zeros(5, 10)])


def _train_alone_with_dkd(x, y, teacher_logits, objective, seed, hidden, epochs, batch_size, lr=3e-3):
    """A plain loop with kd.decoupled_kd_terms: what a cohort member with a DKD objective must match."""
    kd.set_seed(seed)
    model = kd.StudentMLP(hidden=hidden)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = math.ceil(len(x) / batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for index in batch_indices(len(x), batch_size, True, generator):
            logits = model(x[index])
            tckd, nckd = kd.decoupled_kd_terms(logits, teacher_logits[index], y[index], objective.temperature)
            soft = objective.tckd_weight * tckd + objective.nckd_weight * nckd
            loss = (1 - objective.alpha) * F.cross_entropy(logits, y[index]) + objective.alpha * soft
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    return model.eval()


def test_a_dkd_member_of_a_cohort_trains_like_a_plain_loop_with_dkd_loss(data):
    x, y = data.train_x[:384], data.train_y[:384]
    kd.set_seed(9)
    teacher_logits = kd.predict_logits(kd.StudentMLP(hidden=16), x) * 3
    objectives = [Objective(alpha=0.5, temperature=2.0, tckd_weight=0.5, nckd_weight=4.0),
                  Objective(alpha=0.5, temperature=2.0)]  # a plain KD member beside it must not change it
    cohort = MLPCohort(32, [4, 4])
    train_cohort(cohort, x, y, objectives, teacher_logits=teacher_logits, epochs=2, batch_size=64, progress=False)
    alone = _train_alone_with_dkd(x, y, teacher_logits, objectives[0], seed=4, hidden=32, epochs=2, batch_size=64)
    got = kd.predict_logits(cohort.member(0), data.test_x[:64])
    expected = kd.predict_logits(alone, data.test_x[:64])
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
    assert not torch.allclose(kd.predict_logits(cohort.member(1), data.test_x[:64]), expected, atol=1e-2)


def test_tckd_alone_and_nckd_alone_train_different_students(data):
    x, y = data.train_x[:256], data.train_y[:256]
    kd.set_seed(3)
    teacher_logits = kd.predict_logits(kd.StudentMLP(hidden=16), x) * 3
    objectives = [Objective(alpha=0.5, temperature=2.0, tckd_weight=1.0, nckd_weight=0.0),
                  Objective(alpha=0.5, temperature=2.0, tckd_weight=0.0, nckd_weight=1.0)]
    cohort = MLPCohort(16, [0, 0])
    train_cohort(cohort, x, y, objectives, teacher_logits=teacher_logits, epochs=2, batch_size=32, progress=False)
    logits = cohort.predict_logits(x)
    nckd = [kd.decoupled_kd_terms(logits[k], teacher_logits, y, 2.0)[1].item() for k in range(2)]
    assert nckd[1] < nckd[0]  # the student taught NCKD matches the teacher's non-target classes better
    assert objectives[0].describe() == "DKD T=2 α=0.5 TCKD×1 NCKD×0"


@pytest.mark.parametrize("kwargs, message", [
    ({"alpha": 0.5, "tckd_weight": 1.0}, "set both or neither"),
    ({"alpha": 0.5, "tckd_weight": 1.0, "nckd_weight": -2.0}, "nckd_weight must be a finite number >= 0"),
    ({"alpha": 0.5, "tckd_weight": float("inf"), "nckd_weight": 2.0}, "tckd_weight must be a finite number"),
    ({"alpha": 0.0, "tckd_weight": 1.0, "nckd_weight": 8.0}, "alpha > 0"),
])
def test_a_bad_dkd_objective_is_refused_with_the_argument_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Objective(**kwargs)


def test_a_dkd_member_needs_a_class_for_every_image(data):
    x, y = data.train_x[:64], data.train_y[:64].clone()
    y[:10] = kd.IGNORE_LABEL
    cohort = MLPCohort(8, [0])
    dkd = Objective(alpha=0.5, temperature=2.0, tckd_weight=1.0, nckd_weight=8.0)
    with pytest.raises(ValueError, match="labels='teacher'"):
        train_cohort(cohort, x, y, [dkd], teacher_logits=torch.zeros(64, 10), epochs=1, progress=False)
    # with the teacher's top-1 classes as labels it trains
    train_cohort(cohort, x, y, [Objective(alpha=0.5, temperature=2.0, labels="teacher", tckd_weight=1.0, nckd_weight=8.0)],
                 teacher_logits=torch.randn(64, 10), epochs=1, progress=False)


def test_a_member_pointed_at_its_teachers_copy_of_a_stacked_training_set_trains_as_with_that_teacher_alone(data):
    # notebook 06 gives cohort members different teachers by stacking the training set once per teacher
    x, y = data.train_x[:256], data.train_y[:256]
    generator = torch.Generator().manual_seed(5)
    first, second = torch.randn(256, 10, generator=generator) * 3, torch.randn(256, 10, generator=generator) * 3
    objective = Objective(alpha=0.5, temperature=2.0, tckd_weight=1.0, nckd_weight=4.0)
    stacked = MLPCohort(16, [7, 7])
    train_cohort(stacked, x.repeat(2, 1, 1, 1), y.repeat(2), [objective, objective], teacher_logits=torch.cat([first, second]),
                 subsets=torch.stack([torch.arange(256), torch.arange(256) + 256]), epochs=2, batch_size=32, progress=False)
    for index, teacher_logits in enumerate((first, second)):
        alone = MLPCohort(16, [7])
        train_cohort(alone, x, y, [objective], teacher_logits=teacher_logits, epochs=2, batch_size=32, progress=False)
        assert torch.allclose(stacked.member(index).hidden[1].weight, alone.member(0).hidden[1].weight, atol=1e-6)
    assert not torch.allclose(stacked.member(0).hidden[1].weight, stacked.member(1).hidden[1].weight, atol=1e-3)
