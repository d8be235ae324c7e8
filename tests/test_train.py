import math

import pytest
import torch

import kd_utils as kd


def _small(data, n=512):
    return data.train_x[:n], data.train_y[:n]


def test_training_lowers_the_loss_on_a_small_subset(data):
    x, y = _small(data)
    kd.set_seed(0)
    history = kd.train(kd.StudentCNN(), x, y, val=(data.val_x, data.val_y), epochs=4, progress=False, verbose=False)
    losses = history.column("loss")
    assert losses[-1] < losses[0]
    assert history.final["train_accuracy"] > 0.5


def test_history_records_loss_accuracies_and_seconds_per_epoch(data):
    x, y = _small(data, 256)
    history = kd.train(kd.StudentMLP(), x, y, val=(data.val_x, data.val_y), epochs=2, progress=False, verbose=False)
    assert [record["epoch"] for record in history.epochs] == [1, 2]
    for record in history.epochs:
        assert set(record) == {"epoch", "loss", "train_accuracy", "val_accuracy", "seconds", "loss:hard"}
        assert 0 <= record["val_accuracy"] <= 1 and record["seconds"] > 0
    assert "examples/s" in history.summary()


def test_the_same_seed_gives_the_same_numbers_on_the_cpu(data):
    x, y = _small(data, 256)
    runs = []
    for _ in range(2):
        kd.set_seed(7)
        model = kd.StudentCNN()
        history = kd.train(model, x, y, epochs=1, seed=7, progress=False, verbose=False, device="cpu")
        runs.append((history.final["loss"], kd.predict_logits(model, data.test_x[:64])))
    assert runs[0][0] == runs[1][0]
    assert torch.equal(runs[0][1], runs[1][1])


def test_a_nan_loss_stops_training_with_a_clear_message(data):
    x, y = _small(data, 64)
    with pytest.raises(FloatingPointError, match="Lower the learning rate"):
        kd.train(kd.StudentMLP(), x * math.nan, y, epochs=1, progress=False, verbose=False)


def test_distilling_from_cached_logits_equals_distilling_from_the_live_teacher(data):
    x, y = _small(data, 256)
    kd.set_seed(0)
    teacher = kd.StudentCNN(width=4).eval()
    cached = kd.predict_logits(teacher, x)
    results = []
    for source in ({"teacher": teacher}, {"teacher_logits": cached}):
        kd.set_seed(1)
        student = kd.StudentMLP()
        kd.train(student, x, y, epochs=1, seed=1, temperature=3.0, alpha=0.7, progress=False, verbose=False, **source)
        results.append(kd.predict_logits(student, data.test_x[:32]))
    assert torch.allclose(results[0], results[1], atol=1e-5)


def test_cached_logits_of_the_wrong_length_or_class_count_are_rejected_before_training(data):
    x, y = _small(data, 100)
    with pytest.raises(ValueError, match=r"expected \(100, 10\)"):
        kd.train(kd.StudentMLP(), x, y, teacher_logits=torch.zeros(99, 10), progress=False, verbose=False)
    with pytest.raises(ValueError, match=r"expected \(100, 10\)"):
        kd.train(kd.StudentMLP(), x, y, teacher_logits=torch.zeros(100, 7), progress=False, verbose=False)


def test_unlabelled_images_train_through_the_soft_term_only(data):
    x, y = _small(data, 256)
    teacher = kd.StudentCNN(width=4).eval()
    hidden_labels = torch.full_like(y, kd.IGNORE_LABEL)
    history = kd.train(kd.StudentMLP(), x, hidden_labels, teacher=teacher, alpha=1.0, epochs=1, progress=False,
                       verbose=False)
    assert math.isfinite(history.final["loss"])


@pytest.mark.parametrize(
    "make_term",
    [
        lambda: kd.FeatureTerm(kd.HintLoss(16, 48), "block2", "block2"),
        lambda: kd.FeatureTerm(kd.AttentionTransferLoss(), "block2", "block2"),
        lambda: kd.FeatureTerm(kd.CosineLoss(16, 48), "block2", "block2"),
    ],
    ids=["hint", "attention", "cosine"],
)
def test_one_training_step_with_each_feature_loss_lowers_that_loss_on_a_fixed_batch(data, make_term):
    kd.set_seed(0)
    teacher = kd.TeacherCNN(width=24).eval()
    student = kd.StudentCNN()
    term = make_term()
    images = data.train_x[:64]

    def feature_loss() -> float:
        student.train()
        with torch.no_grad(), kd.tap(student, "block2") as s, kd.tap(teacher, "block2") as t:
            student(images)
            teacher(images)
        return term.loss(s["block2"], t["block2"]).item()

    before = feature_loss()
    kd.train(student, images, data.train_y[:64], teacher=teacher, feature_terms=[term], logit_loss=False, epochs=1,
             batch_size=64, lr=1e-2, progress=False, verbose=False, device="cpu")
    assert feature_loss() < before


def test_feature_terms_need_a_live_teacher(data):
    with pytest.raises(ValueError, match="live teacher"):
        kd.train(kd.StudentCNN(), data.train_x[:8], data.train_y[:8],
                 feature_terms=[kd.FeatureTerm(kd.AttentionTransferLoss(), "block1", "block1")], progress=False)


def test_train_teacher_returns_metadata_with_the_test_accuracy(data, monkeypatch):
    monkeypatch.setenv("KD_SMOKE", "1")
    teacher, metadata = kd.train_teacher(data, progress=False)
    assert isinstance(teacher, kd.TeacherCNN)
    assert 0.5 < metadata["test_accuracy"] <= 1
    assert metadata["mode"] == "smoke" and metadata["epochs"] == kd.TEACHER_SCHEDULE["smoke"]["epochs"]


@pytest.mark.parametrize("name", sorted(kd.STUDENT_RECIPES))
def test_every_scorecard_student_can_be_retrained_from_its_recipe(data, monkeypatch, name):
    monkeypatch.setenv("KD_SMOKE", "1")
    small = kd.data.FashionMNISTData(data.train_x[:300], data.train_y[:300], data.val_x[:100], data.val_y[:100],
                                data.test_x[:100], data.test_y[:100], smoke=True)
    teacher = kd.TeacherCNN().eval()
    model, metadata = kd.recipes.train_student(name, small, teacher)
    assert type(model).__name__ == kd.STUDENT_RECIPES[name].architecture
    assert 0 <= metadata["test_accuracy"] <= 1


def test_load_or_train_student_loads_what_a_notebook_saved(data, monkeypatch, capsys):
    monkeypatch.setenv("KD_SMOKE", "1")
    saved = kd.StudentMLP(hidden=64)
    kd.save_student("mlp_scratch", saved, {"notebook": "03", "test_accuracy": 0.5})
    model, metadata = kd.load_or_train_student("mlp_scratch", data)
    assert metadata["notebook"] == "03" and "loaded" in capsys.readouterr().out
    assert torch.equal(model.state_dict()["classifier.weight"], saved.state_dict()["classifier.weight"])


def _reference_loss(logits, teacher_logits, labels, temperature, alpha):
    """The distillation loss written out by hand, term by term, from probabilities."""
    labelled = labels != kd.IGNORE_LABEL
    log_p = torch.log_softmax(logits, dim=1)
    hard = -log_p[labelled, labels[labelled]].mean() if labelled.any() else logits.sum() * 0.0
    teacher_p = torch.softmax(teacher_logits / temperature, dim=1)
    log_q = torch.log_softmax(logits / temperature, dim=1)
    soft = (teacher_p * (teacher_p.log() - log_q)).sum(dim=1).mean() * temperature**2
    return (1 - alpha) * hard + alpha * soft


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("temperature", [1.0, 4.0])
@pytest.mark.parametrize("all_labelled", [True, False])
def test_the_training_steps_loss_equals_the_distillation_loss_in_value_and_gradient(alpha, temperature, all_labelled):
    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(16, 10, dtype=torch.float64, generator=generator)
    teacher_logits = 3 * torch.randn(16, 10, dtype=torch.float64, generator=generator)
    labels = torch.randint(0, 10, (16,), generator=generator)
    if not all_labelled:
        labels[::3] = kd.IGNORE_LABEL
    reference = logits.clone().requires_grad_()
    expected = _reference_loss(reference, teacher_logits, labels, temperature, alpha)
    expected.backward()
    fast = logits.clone().requires_grad_()
    teacher_log_probs = torch.log_softmax(teacher_logits / temperature, dim=-1)
    value, _ = kd.objective_loss(fast, labels, kd.Objective(alpha=alpha, temperature=temperature), teacher_log_probs,
                                 all_labelled)
    value.backward()
    assert torch.allclose(value, expected, atol=1e-12)
    assert torch.allclose(fast.grad, reference.grad, atol=1e-12)
    checked = kd.distillation_loss(logits, teacher_logits, labels, temperature, alpha)
    assert torch.allclose(checked, expected.detach(), atol=1e-12)


def test_plain_training_steps_loss_is_the_cross_entropy_of_the_labelled_images():
    logits = torch.randn(8, 10, dtype=torch.float64)
    labels = torch.tensor([0, 1, -1, 3, -1, 5, 6, 7])
    labelled = labels != kd.IGNORE_LABEL
    expected = torch.nn.functional.cross_entropy(logits[labelled], labels[labelled])
    assert torch.allclose(kd.objective_loss(logits, labels, kd.Objective(alpha=0.5, temperature=4.0))[0], expected)
    assert torch.allclose(kd.losses.hard_loss(logits, labels), expected)
    nobody = torch.full((8,), kd.IGNORE_LABEL)
    assert kd.objective_loss(logits, nobody, kd.Objective(alpha=0.5, temperature=4.0))[0].item() == 0.0


def test_labels_outside_the_classes_are_rejected_before_training(data):
    x, y = _small(data, 64)
    bad = y.clone()
    bad[5] = 10
    with pytest.raises(ValueError, match=r"class indices in \[0, 9\]"):
        kd.train(kd.StudentMLP(), x, bad, epochs=1, progress=False, verbose=False)
