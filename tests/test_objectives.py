"""Issue 12: one soft-loss primitive, objectives passed to kd.train, per-term History, one counter, one atomic write."""

from __future__ import annotations

import math
import os
import stat

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

import kd_utils as kd  # noqa: E402

# Final loss and sum of |weights| after one epoch on 128 smoke images, computed with kd_utils as it was
# before issue 12 split train() (commit 6f5f844, 1 thread): the refactor must train the same students.
GOLDEN = {
    "plain": (2.1977031230926514, 477.45317471027374),
    "cached_kd": (0.7216517925262451, 477.18666726350784),
    "live_kd": (1.1937992572784424, 140.46706564445049),
    "hint": (2.3289873600006104, 140.05293838307261),
    "cohort_kd": (math.nan, 477.18666726350784),
}


@pytest.fixture(scope="module")
def small(data):
    x, y = data.train_x[:128], data.train_y[:128]
    kd.set_seed(5)
    teacher = kd.TeacherCNN(width=8, hidden=32).eval()
    return x, y, teacher, kd.predict_logits(teacher, x) * 4


def _train(model, x, y, **settings):
    return kd.train(model, x, y, epochs=1, batch_size=64, seed=1, progress=False, verbose=False, device="cpu", **settings)


def _mlp():
    kd.set_seed(1)
    return kd.StudentMLP(hidden=32)


def _cnn():
    kd.set_seed(1)
    return kd.StudentCNN(width=4)


def _abs_sum(model) -> float:
    return sum(p.abs().sum().item() for p in model.parameters())


def test_the_old_keywords_train_the_same_students_as_before_the_split(small):
    x, y, teacher, cached = small
    runs = {
        "plain": (_mlp, {}),
        "cached_kd": (_mlp, {"teacher_logits": cached, "temperature": 3.0, "alpha": 0.7}),
        "live_kd": (_cnn, {"teacher": teacher, "temperature": 2.0, "alpha": 0.5}),
        "hint": (_cnn, {"teacher": teacher, "temperature": 2.0, "alpha": 0.9,
                        "feature_terms": [kd.FeatureTerm(kd.HintLoss(8, 16), "block2", "block2", 2.0)]}),
    }
    for name, (make, settings) in runs.items():
        model = make()
        history = _train(model, x, y, **settings)
        assert (history.final["loss"], _abs_sum(model)) == pytest.approx(GOLDEN[name], rel=1e-5), name
    cohort = kd.MLPCohort(32, [1])
    kd.train_cohort(cohort, x, y, [kd.Objective(alpha=0.7, temperature=3.0)], teacher_logits=cached, epochs=1,
                    batch_size=64, progress=False)
    assert _abs_sum(cohort.member(0)) == pytest.approx(GOLDEN["cohort_kd"][1], rel=1e-5)


def test_an_objective_passed_in_trains_bitwise_like_the_keywords_it_replaces(small):
    x, y, teacher, cached = small
    term = kd.FeatureTerm(kd.AttentionTransferLoss(), "block1", "block1", 3.0)
    pairs = [
        (_mlp, {"teacher_logits": cached, "temperature": 3.0, "alpha": 0.3},
         {"teacher_logits": cached, "objective": kd.Objective(alpha=0.3, temperature=3.0)}),
        (_cnn, {"teacher": teacher, "feature_terms": [term], "temperature": 2.0, "alpha": 0.6},
         {"teacher": teacher, "objective": kd.Objective(alpha=0.6, temperature=2.0, feature_terms=(term,))}),
    ]
    for make, keywords, by_record in pairs:
        by_keywords, by_objective = make(), make()
        _train(by_keywords, x, y, **keywords)
        _train(by_objective, x, y, **by_record)
        for a, b in zip(by_keywords.state_dict().values(), by_objective.state_dict().values()):
            assert torch.equal(a, b)


def test_soft_loss_gives_each_member_the_soft_loss_at_its_own_temperature():
    generator = torch.Generator().manual_seed(0)
    student, teacher = (3 * torch.randn(3, 8, 10, generator=generator) for _ in range(2))
    temperatures = torch.tensor([1.0, 2.0, 5.0])
    each = kd.losses.soft_loss(kd.losses.log_soft_targets(student, temperatures[:, None, None]),
                        kd.losses.log_soft_targets(teacher, temperatures[:, None, None]), temperatures)
    assert each.shape == (3,)
    for member, temperature in enumerate(temperatures.tolist()):
        assert each[member].item() == pytest.approx(kd.kd_loss(student[member], teacher[member], temperature).item(), rel=1e-6)


def test_every_soft_term_is_computed_by_soft_loss(small, monkeypatch):
    x, y, teacher, cached = small
    calls = []
    real = kd.losses.soft_loss

    def spy(*args, **kwargs):
        calls.append(args[0].dim())
        return real(*args, **kwargs)

    monkeypatch.setattr(kd.losses, "soft_loss", spy)
    logits = torch.randn(4, 10)
    paths = {
        "kd_loss": lambda: kd.kd_loss(logits, logits.flip(0)),
        "distillation_loss": lambda: kd.distillation_loss(logits, logits.flip(0), torch.arange(4)),
        "train, cached logits": lambda: _train(_mlp(), x[:64], y[:64], teacher_logits=cached[:64]),
        "train, live teacher": lambda: _train(_cnn(), x[:64], y[:64], teacher=teacher),
        "train, features": lambda: _train(_cnn(), x[:64], y[:64], teacher=teacher, feature_terms=[
            kd.FeatureTerm(kd.AttentionTransferLoss(), "block1", "block1")]),
        "cohort": lambda: kd.train_cohort(kd.MLPCohort(8, [0]), x[:64], y[:64], [kd.Objective(alpha=0.5)],
                                          teacher_logits=cached[:64], epochs=1, progress=False),
    }
    for path, run in paths.items():
        calls.clear()
        run()
        assert calls, f"{path} computed its soft term without kd.losses.soft_loss"


def test_history_keeps_each_loss_term_per_epoch_and_they_add_up_to_the_total(small):
    x, y, teacher, cached = small
    history = kd.train(_mlp(), x, y, teacher_logits=cached, temperature=3.0, alpha=0.25, epochs=2, batch_size=64,
                       progress=False, verbose=False)
    assert list(history.terms) == ["hard", "soft"]
    for epoch, record in enumerate(history.epochs):
        assert record["loss"] == pytest.approx(0.75 * history.terms["hard"][epoch] + 0.25 * history.terms["soft"][epoch],
                                               rel=1e-5)
    assert "hard" in history.summary() and "soft" in history.summary()
    plain = kd.train(_mlp(), x, y, epochs=1, progress=False, verbose=False)
    assert plain.terms == {"hard": plain.column("loss")}
    hint = kd.FeatureTerm(kd.HintLoss(8, 16), "block2", "block2", 2.0)
    featured = _train(_cnn(), x, y, teacher=teacher, alpha=1.0, feature_terms=[hint])
    assert list(featured.terms) == ["soft", "hint block2"]
    total = featured.terms["soft"][0] + 2.0 * featured.terms["hint block2"][0]
    assert featured.final["loss"] == pytest.approx(total, rel=1e-5)


def test_plot_history_draws_one_line_per_term_when_asked(small):
    x, y, _, cached = small
    history = _train(_mlp(), x, y, teacher_logits=cached)
    figure = kd.plots.plot_history(history, terms=True)
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert labels == ["StudentMLP (total)", "StudentMLP: hard", "StudentMLP: soft"]
    assert len(kd.plots.plot_history(history).axes[0].get_lines()) == 1


def test_optimizer_and_schedule_can_be_chosen(small):
    x, y, _, _ = small
    default, explicit, sgd = _mlp(), _mlp(), _mlp()
    _train(default, x, y)
    steps = []
    _train(explicit, x, y, optimizer=lambda parameters: torch.optim.AdamW(parameters, lr=3e-3, weight_decay=1e-4),
           schedule=lambda optimizer, total: steps.append(total) or torch.optim.lr_scheduler.OneCycleLR(
               optimizer, max_lr=3e-3, total_steps=total))
    assert steps == [2]  # 128 images in batches of 64, one epoch
    assert all(torch.equal(a, b) for a, b in zip(default.parameters(), explicit.parameters()))
    built, adamw = [], _mlp()

    def constant(optimizer, total):
        return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)

    _train(adamw, x, y, schedule=constant)
    _train(sgd, x, y, optimizer=lambda parameters: built.append(len(parameters)) or torch.optim.SGD(parameters, lr=0.1),
           schedule=constant)
    assert built == [len(list(sgd.parameters()))]
    assert not torch.equal(adamw.classifier.weight, sgd.classifier.weight)


def test_an_objective_can_be_a_plain_function(small):
    x, y, _, _ = small

    def label_smoothing(model, images, labels, index):
        logits = model(images)
        loss = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
        return logits, loss, {"smoothed CE": loss}

    history = _train(_mlp(), x, y, objective=label_smoothing)
    assert history.terms == {"smoothed CE": history.column("loss")}


def test_train_refuses_an_objective_together_with_the_keywords_it_replaces(small):
    x, y, teacher, cached = small
    with pytest.raises(ValueError, match="to the kd.Objective"):
        _train(_mlp(), x, y, objective=kd.losses.SCRATCH, temperature=2.0)
    with pytest.raises(ValueError, match="live teacher= or cached teacher_logits="):
        _train(_mlp(), x, y, objective=kd.Objective(alpha=0.5, temperature=2.0))
    with pytest.raises(ValueError, match="live teacher"):
        _train(_cnn(), x, y, teacher_logits=cached,
               objective=kd.Objective(feature_terms=(kd.FeatureTerm(kd.AttentionTransferLoss(), "block1", "block1"),)))
    with pytest.raises(ValueError, match="alpha must be in"):
        kd.Objective(alpha=1.5)
    with pytest.raises(ValueError, match="give it the teacher, not kd.train"):
        _train(_mlp(), x, y, objective=lambda *batch: None, teacher=teacher)


def test_count_parameters_can_leave_out_frozen_ones_and_the_old_names_are_gone():
    model = kd.StudentMLP(hidden=16)
    model.hidden[1].requires_grad_(False)
    frozen = sum(p.numel() for p in model.hidden[1].parameters())
    assert kd.count_parameters(model) - kd.count_parameters(model, trainable_only=True) == frozen == 784 * 16 + 16
    assert not hasattr(kd, "parameter_count") and not hasattr(kd, "cache_teacher_logits"), "one name per idea"


def test_atomic_write_replaces_the_file_whole_or_not_at_all(tmp_path):
    path = tmp_path / "sub" / "table.csv"
    with kd.atomic_write(path, "w") as file:
        file.write("first\n")
    umask = os.umask(0)
    os.umask(umask)
    assert path.read_text() == "first\n" and stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    path.chmod(0o600)
    with pytest.raises(RuntimeError):
        with kd.atomic_write(path, "w") as file:
            file.write("half")
            raise RuntimeError("crash mid-write")
    assert path.read_text() == "first\n" and os.listdir(path.parent) == ["table.csv"]
    with kd.atomic_write(path) as file:
        file.write(b"second\n")
    assert path.read_bytes() == b"second\n" and stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ValueError, match="mode must be"):
        with kd.atomic_write(path, "a"):
            pass


# ----------------------------------------------------------------------------- issue 19: one Objective, one loss, two engines

METHODS = {
    "scratch": kd.losses.SCRATCH,
    "KD": kd.Objective(alpha=0.7, temperature=3.0),
    "soft targets alone": kd.Objective(alpha=1.0, temperature=4.0),
    "label smoothing": kd.Objective(smoothing=0.1),
    "KD + label smoothing": kd.Objective(alpha=0.3, temperature=2.0, smoothing=0.05),
    "teacher's hard labels": kd.Objective(labels="teacher"),
    "DKD": kd.Objective(alpha=1.0, temperature=4.0, tckd_weight=1.0, nckd_weight=8.0),
}


def _log_probs(logits, temperature):
    return torch.log_softmax(logits / temperature, dim=-1)


@pytest.mark.parametrize("labels_missing", [False, True])
def test_objective_loss_takes_a_member_axis_as_just_another_axis(labels_missing):
    """Stacked objectives on (members, batch, classes) give each member the loss its own objective gives in 2-D."""
    generator = torch.Generator().manual_seed(0)
    objectives = [o for o in METHODS.values() if o.labels == "true"]
    members = len(objectives)
    logits = 3 * torch.randn(members, 16, 10, generator=generator, dtype=torch.float64)
    teacher = 3 * torch.randn(members, 16, 10, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 10, (members, 16), generator=generator)
    if labels_missing:  # DKD needs every class: unlabelled rows only for the others
        labels[[k for k, o in enumerate(objectives) if not o.decoupled], ::3] = -1
    temperatures = torch.tensor([o.temperature for o in objectives], dtype=torch.float64)[:, None, None]
    stacked = kd.losses.StackedObjectives.of(objectives, dtype=torch.float64)
    total, terms = kd.objective_loss(logits, labels, stacked, _log_probs(teacher, temperatures))
    assert total.shape == (members,) and terms["hard"].shape == terms["soft"].shape == (members,)
    for k, objective in enumerate(objectives):
        alone, _ = kd.objective_loss(logits[k], labels[k], objective, _log_probs(teacher[k], objective.temperature))
        assert total[k].item() == pytest.approx(alone.item(), rel=1e-12), objective.describe()


def test_objective_loss_is_the_course_formula_written_differently():
    """(1 − α)·CE_ε + α·T²·KL (or DKD), against torch's own cross-entropy, kl_div and dkd_loss, in float64."""
    generator = torch.Generator().manual_seed(1)
    student = 2 * torch.randn(32, 10, generator=generator, dtype=torch.float64)
    teacher = 2 * torch.randn(32, 10, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 10, (32,), generator=generator)
    F = torch.nn.functional
    for name, objective in METHODS.items():
        if objective.labels == "teacher":
            continue
        t, a, eps = objective.temperature, objective.alpha, objective.smoothing
        hard = F.cross_entropy(student, labels, label_smoothing=eps)
        if objective.decoupled:
            soft = kd.losses.dkd_loss(student, teacher, labels, objective.tckd_weight, objective.nckd_weight, t)
        else:
            soft = t * t * F.kl_div(F.log_softmax(student / t, 1), F.softmax(teacher / t, 1), reduction="batchmean")
        expected = hard if a == 0 else (1 - a) * hard + a * soft
        got, _ = kd.objective_loss(student, labels, objective, _log_probs(teacher, t) if a > 0 else None)
        assert got.item() == pytest.approx(expected.item(), rel=1e-10), name


def test_a_sequence_axis_is_just_another_axis():
    """Logits (sequences, positions, vocabulary): one loss per sequence; their mean is the loss of every position."""
    generator = torch.Generator().manual_seed(2)
    student = torch.randn(4, 12, 65, generator=generator, dtype=torch.float64)
    teacher = torch.randn(4, 12, 65, generator=generator, dtype=torch.float64)
    targets = torch.randint(0, 65, (4, 12), generator=generator)
    objective = kd.Objective(alpha=0.5, temperature=1.0)
    per_sequence, _ = kd.objective_loss(student, targets, objective, _log_probs(teacher, 1.0))
    flat, _ = kd.objective_loss(student.reshape(-1, 65), targets.reshape(-1), objective, _log_probs(teacher, 1.0).reshape(-1, 65))
    assert per_sequence.shape == (4,) and per_sequence.mean().item() == pytest.approx(flat.item(), rel=1e-12)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_trains_through_either_engine_alike(small, method):
    """kd.train(objective=kd.Objective(...)) and a one-member cohort train the same student, up to float rounding."""
    x, y, _, cached = small
    objective = METHODS[method]
    cohort = kd.MLPCohort(32, [3])
    kd.train_cohort(cohort, x, y, [objective], teacher_logits=cached, epochs=1, batch_size=64, progress=False)
    kd.set_seed(3)
    again = kd.StudentMLP(hidden=32)
    kd.train(again, x, y, epochs=1, batch_size=64, seed=3, progress=False, verbose=False, device="cpu",
             objective=objective, teacher_logits=cached if objective.needs_teacher else None)
    assert torch.allclose(kd.predict_logits(cohort.member(0), x), kd.predict_logits(again, x), atol=1e-4), method


def test_each_engine_refuses_the_term_only_the_other_computes_and_says_which(small):
    x, y, teacher, cached = small
    hidden_hint = kd.Objective(alpha=0.5, temperature=2.0, feature_weight=1.0)
    with pytest.raises(ValueError, match="train it with kd.train_cohort"):
        _train(_mlp(), x, y, objective=hidden_hint, teacher_logits=cached)
    layer_hint = kd.Objective(feature_terms=(kd.FeatureTerm(kd.HintLoss(8, 16), "block2", "block2"),))
    with pytest.raises(ValueError, match="train it with kd.train"):
        kd.train_cohort(kd.MLPCohort(8, [0]), x, y, [layer_hint], teacher_logits=cached, epochs=1, progress=False)
    unlabelled = y.clone()
    unlabelled[::2] = -1
    with pytest.raises(ValueError, match="labels='teacher'"):
        _train(_mlp(), x, unlabelled, objective=METHODS["DKD"], teacher_logits=cached)


@pytest.mark.parametrize("field, value", [("alpha", -0.1), ("alpha", math.nan), ("temperature", 0.0),
                                          ("smoothing", 1.0), ("feature_weight", -1.0), ("feature_weight", math.inf),
                                          ("labels", "mine")])
def test_a_bad_objective_is_refused_before_any_training_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field if field != "temperature" else "temperature must be > 0"):
        kd.Objective(**{field: value})
    with pytest.raises(ValueError, match="weight must be a finite number"):
        kd.FeatureTerm(kd.AttentionTransferLoss(), "block1", "block1", weight=-2.0)


def test_kd_train_takes_the_objective_record_itself():
    """The record and the step were two things called 'objective': passing one where the other was expected failed
    at the first step ("'Objective' object is not callable"). kd.train now takes the record."""
    kd.set_seed(0)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    history = _train(_mlp(), x, y, objective=kd.Objective(smoothing=0.1))
    assert list(history.terms) == ["hard"] and math.isfinite(history.final["loss"])


@pytest.mark.parametrize("beta", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_the_worked_example_a_new_logit_loss_is_one_function_and_one_field(beta):
    """Objective.jsd_beta (TRL's generalized JSD) was added as one function in kd_utils/losses.py and one field:
    both engines train with it, and on (sequences, positions, vocabulary) it is notebook 08's per-token loss."""
    from kd_utils import lm
    generator = torch.Generator().manual_seed(3)
    student = 2 * torch.randn(3, 7, 20, generator=generator, dtype=torch.float64)
    teacher = 2 * torch.randn(3, 7, 20, generator=generator, dtype=torch.float64)
    targets = torch.randint(0, 20, (3, 7), generator=generator)
    objective = kd.Objective(alpha=1.0, temperature=1.0, jsd_beta=beta)
    got, _ = kd.objective_loss(student.reshape(-1, 20), targets.reshape(-1), objective,
                               _log_probs(teacher, 1.0).reshape(-1, 20))
    assert got.item() == pytest.approx(lm.generalized_jsd(student, teacher, beta=beta).item(), rel=1e-9)
    if beta in (0.0, 1.0):  # the ends are the two KLs, each the right way round: swapping them turns this red
        p_s, p_t = torch.softmax(student, -1), torch.softmax(teacher, -1)
        first, second = (p_t, p_s) if beta == 0.0 else (p_s, p_t)
        naive = (first * (first.log() - second.log())).sum(-1).mean()
        assert got.item() == pytest.approx(naive.item(), rel=1e-9)


def test_both_engines_train_the_jsd_alike(small):
    x, y, _, cached = small
    objectives = [kd.Objective(alpha=0.5, temperature=2.0, jsd_beta=0.5), kd.Objective(alpha=0.5, temperature=2.0)]
    cohort = kd.MLPCohort(32, [3, 3])
    kd.train_cohort(cohort, x, y, objectives, teacher_logits=cached, epochs=1, batch_size=64, progress=False)
    kd.set_seed(3)
    alone = kd.StudentMLP(hidden=32)
    kd.train(alone, x, y, epochs=1, batch_size=64, seed=3, progress=False, verbose=False, device="cpu",
             objective=objectives[0], teacher_logits=cached)
    assert torch.allclose(kd.predict_logits(cohort.member(0), x), kd.predict_logits(alone, x), atol=1e-4)
    assert not torch.allclose(kd.predict_logits(cohort.member(1), x), kd.predict_logits(alone, x), atol=1e-3)


def test_a_language_model_step_is_objective_loss_with_positions_as_the_batch_axis(monkeypatch):
    """Notebook 08's engine computes every loss but the top-k cache's through kd.objective_loss (issue 21 item 2)."""
    from kd_utils import lm_train
    calls = []
    real = lm_train.objective_loss
    monkeypatch.setattr(lm_train, "objective_loss", lambda *args, **kwargs: calls.append(args[0].shape) or real(*args, **kwargs))
    generator = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 5, 11, generator=generator, requires_grad=True)
    targets = torch.randint(0, 11, (3, 5), generator=generator)
    teacher = torch.log_softmax(torch.randn(3, 5, 11, generator=generator), -1)
    objective = lm_train.LMObjective("forward KL + CE", hard_weight=0.5, soft_weight=1.0)
    total, terms = lm_train._sequence_terms(objective, logits, targets, teacher, None, None)
    assert calls == [(15, 11)] and set(terms) == {"hard", "soft"}
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1))
    kl = torch.nn.functional.kl_div(torch.log_softmax(logits.reshape(-1, 11), -1), teacher.reshape(-1, 11),
                                    log_target=True, reduction="batchmean")
    assert total.item() == pytest.approx((0.5 * ce + kl).item(), rel=1e-6)
    with pytest.raises(ValueError, match="soft_weight must be at most 1"):
        lm_train._sequence_terms(lm_train.LMObjective("too soft", soft_weight=2.0), logits, targets, teacher, None, None)


def test_a_hard_weight_of_its_own_trains_in_kd_train_and_is_refused_by_the_cohort(small):
    x, y, _, cached = small
    objective = kd.Objective(alpha=1.0, temperature=2.0, hard_weight=0.5)
    history = _train(_mlp(), x, y, objective=objective, teacher_logits=cached)
    assert history.final["loss"] == pytest.approx(0.5 * history.terms["hard"][0] + history.terms["soft"][0], rel=1e-5)
    with pytest.raises(ValueError, match="cannot train .* with its own hard_weight"):
        kd.train_cohort(kd.MLPCohort(8, [0]), x, y, [objective], teacher_logits=cached, epochs=1, progress=False)
    with pytest.raises(ValueError, match="hard_weight must be None"):
        kd.Objective(hard_weight=-1.0)
