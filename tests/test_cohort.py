"""A cohort trains many MLP students side by side: each must train exactly as it would alone."""

import pytest
import torch

import kd_utils as kd
from kd_utils.cohort import MLPCohort, train_cohort
from kd_utils.losses import SCRATCH, Objective


def _small(data, n=512):
    return data.train_x[:n], data.train_y[:n]


def test_a_member_starts_from_the_weights_of_the_student_built_after_set_seed():
    cohort = MLPCohort(32, [3, 5])
    for index, seed in enumerate([3, 5]):
        kd.set_seed(seed)
        alone = kd.StudentMLP(hidden=32)
        member = cohort.member(index)
        for a, b in zip(alone.parameters(), member.parameters()):
            assert torch.equal(a, b)


def test_a_scratch_member_trains_like_kd_train_with_the_same_seed(data):
    x, y = _small(data)
    cohort = MLPCohort(32, [0, 1])
    train_cohort(cohort, x, y, [SCRATCH, SCRATCH], epochs=2, batch_size=64, progress=False)
    for index, seed in enumerate([0, 1]):
        kd.set_seed(seed)
        alone = kd.StudentMLP(hidden=32)
        kd.train(alone, x, y, epochs=2, batch_size=64, seed=seed, progress=False, verbose=False)
        expected = kd.predict_logits(alone, data.test_x[:64])
        got = kd.predict_logits(cohort.member(index), data.test_x[:64])
        assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()


def test_a_distilled_member_trains_like_kd_train_from_cached_logits(data):
    x, y = _small(data)
    kd.set_seed(9)
    teacher_logits = kd.predict_logits(kd.StudentMLP(hidden=16), x) * 3
    objective = Objective(alpha=0.7, temperature=3.0)
    cohort = MLPCohort(32, [4])
    train_cohort(cohort, x, y, [objective], teacher_logits=teacher_logits, epochs=1, batch_size=64, progress=False)
    kd.set_seed(4)
    alone = kd.StudentMLP(hidden=32)
    kd.train(alone, x, y, teacher_logits=teacher_logits, temperature=3.0, alpha=0.7, epochs=1, batch_size=64, seed=4,
             progress=False, verbose=False)
    assert torch.allclose(kd.predict_logits(cohort.member(0), data.test_x[:64]),
                          kd.predict_logits(alone, data.test_x[:64]), atol=1e-4)


def test_members_do_not_influence_each_other(data):
    x, y = _small(data, 256)
    kd.set_seed(2)
    teacher_logits = torch.randn(len(x), 10)
    pair = MLPCohort(16, [0, 0])
    train_cohort(pair, x, y, [SCRATCH, Objective(alpha=1.0, temperature=4.0)], teacher_logits=teacher_logits,
                 epochs=1, batch_size=32, progress=False)
    alone = MLPCohort(16, [0])
    train_cohort(alone, x, y, [SCRATCH], epochs=1, batch_size=32, progress=False)
    assert torch.allclose(pair.member(0).hidden[1].weight, alone.member(0).hidden[1].weight, atol=1e-5)
    assert not torch.allclose(pair.member(1).hidden[1].weight, alone.member(0).hidden[1].weight, atol=1e-3)


def test_label_smoothing_and_teacher_labels_change_what_a_member_learns(data):
    x, y = _small(data, 256)
    teacher_logits = torch.zeros(len(x), 10)
    teacher_logits[:, 3] = 5.0  # a teacher that calls everything class 3
    cohort = MLPCohort(16, [0, 0, 0])
    objectives = [SCRATCH, Objective(smoothing=0.3), Objective(labels="teacher")]
    train_cohort(cohort, x, y, objectives, teacher_logits=teacher_logits, epochs=3, batch_size=32, progress=False)
    predicted = cohort.predict_logits(x).argmax(-1)
    assert (predicted[2] == 3).float().mean() > 0.95  # learnt the teacher's (wrong) hard labels
    assert (predicted[0] == y).float().mean() > 0.5
    smoothed_confidence = cohort.predict_logits(x).softmax(-1).max(-1).values.mean(1)
    assert smoothed_confidence[1] < smoothed_confidence[0]  # ε = 0.3 caps the confidence


@pytest.mark.parametrize("kwargs, message", [
    ({"alpha": 1.5}, "alpha"), ({"temperature": 0.0}, "temperature"), ({"smoothing": -0.1}, "smoothing"),
    ({"labels": "mixed"}, "labels"), ({"alpha": float("nan")}, "finite"),
])
def test_a_bad_objective_is_refused_with_the_argument_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Objective(**kwargs)


def test_train_cohort_refuses_mismatched_inputs(data):
    x, y = _small(data, 64)
    cohort = MLPCohort(8, [0, 1])
    with pytest.raises(ValueError, match="one each"):
        train_cohort(cohort, x, y, [SCRATCH], epochs=1, progress=False)
    with pytest.raises(ValueError, match="pass teacher_logits"):
        train_cohort(cohort, x, y, [SCRATCH, Objective(alpha=0.5)], epochs=1, progress=False)
    with pytest.raises(ValueError, match="teacher_logits have shape"):
        train_cohort(cohort, x, y, [SCRATCH, Objective(alpha=0.5)], teacher_logits=torch.zeros(10, 10), epochs=1,
                     progress=False)
    with pytest.raises(TypeError, match="train_y"):
        train_cohort(cohort, x, y.float(), [SCRATCH, SCRATCH], epochs=1, progress=False)


def test_random_shift_moves_an_image_and_fills_with_background():
    image = torch.full((1, 1, 28, 28), -0.5)
    image[0, 0, 10, 10] = 3.0
    shifted = kd.data.random_shift(image.repeat(200, 1, 1, 1), max_shift=2, generator=torch.Generator().manual_seed(0))
    positions = {tuple((s[0] == 3.0).nonzero()[0].tolist()) for s in shifted}
    assert positions <= {(r, c) for r in range(8, 13) for c in range(8, 13)} and len(positions) > 10
    background = (0 - kd.data.PIXEL_MEAN) / kd.data.PIXEL_STD
    assert ((shifted == background).sum(dim=(1, 2, 3)) > 0).any()


def test_an_ensemble_averages_its_members_probabilities():
    kd.set_seed(0)
    members = [kd.StudentMLP(hidden=8).eval() for _ in range(3)]
    x = torch.randn(5, 1, 28, 28)
    expected = torch.stack([m(x).softmax(-1) for m in members]).mean(0)
    assert torch.allclose(kd.models.Ensemble(members)(x).softmax(-1), expected, atol=1e-6)


def test_a_hint_term_pulls_the_regressed_hidden_units_towards_the_teacher_features(data):
    x, y = _small(data, 256)
    kd.set_seed(3)
    features = torch.randn(len(x), 12)
    cohort = MLPCohort(16, [0, 0], feature_width=12)
    before = cohort.regressor[0].detach().clone()
    train_cohort(cohort, x, y, [SCRATCH, Objective(feature_weight=5.0)], teacher_features=features, epochs=5,
                 batch_size=32, progress=False)
    flat = x.reshape(len(x), -1)[None].expand(2, -1, -1)
    hidden = cohort.forward_with_hidden(flat)[1]
    regressed = torch.baddbmm(cohort.regressor[1], hidden, cohort.regressor[0])
    errors = (regressed - features).pow(2).mean(dim=(1, 2))
    assert errors[1] < 0.8 * errors[0]  # only the hinted member learnt to predict the features
    assert not torch.equal(before[1], cohort.regressor[0][1])


def test_a_hint_needs_features_of_the_right_shape(data):
    x, y = _small(data, 64)
    cohort = MLPCohort(8, [0], feature_width=4)
    with pytest.raises(ValueError, match="pass teacher_features"):
        train_cohort(cohort, x, y, [Objective(feature_weight=1.0)], epochs=1, progress=False)
    with pytest.raises(ValueError, match="teacher_features have shape"):
        train_cohort(cohort, x, y, [Objective(feature_weight=1.0)], teacher_features=torch.zeros(len(x), 5), epochs=1,
                     progress=False)


def test_members_with_their_own_subsets_train_as_cohorts_of_that_subset_alone(data):
    x, y = _small(data, 300)
    subsets = torch.stack([torch.arange(0, 100), torch.arange(100, 200)])
    shared = MLPCohort(16, [0, 1])
    train_cohort(shared, x, y, [SCRATCH, SCRATCH], subsets=subsets, epochs=2, batch_size=32, progress=False)
    for member, rows in enumerate(subsets):
        alone = MLPCohort(16, [member])
        train_cohort(alone, x[rows], y[rows], [SCRATCH], epochs=2, batch_size=32, progress=False)
        assert torch.allclose(shared.member(member).hidden[1].weight, alone.member(0).hidden[1].weight, atol=1e-6)
    with pytest.raises(ValueError, match="indices into train_x"):
        train_cohort(shared, x, y, [SCRATCH, SCRATCH], subsets=subsets + 250, epochs=1, progress=False)


def test_each_member_learns_from_its_own_teacher_as_it_would_in_a_cohort_of_that_teacher_alone(data):
    x, y = _small(data, 256)
    generator = torch.Generator().manual_seed(3)
    teachers = torch.randn(2, len(x), 10, generator=generator) * 3
    objectives = [Objective(alpha=0.8, temperature=2.0), Objective(alpha=0.8, temperature=4.0),
                  Objective(labels="teacher"), Objective(alpha=0.8, temperature=2.0, tckd_weight=1.0, nckd_weight=2.0)]
    teacher_of = [1, 0, 1, 1]
    mixed = MLPCohort(16, [0, 1, 2, 3])
    train_cohort(mixed, x, y, objectives, teacher_logits=teachers, teacher_of=teacher_of, epochs=1, batch_size=32,
                 progress=False)
    for member, (objective, teacher) in enumerate(zip(objectives, teacher_of)):
        alone = MLPCohort(16, [member])
        train_cohort(alone, x, y, [objective], teacher_logits=teachers[teacher], epochs=1, batch_size=32, progress=False)
        assert torch.allclose(mixed.member(member).hidden[1].weight, alone.member(0).hidden[1].weight, atol=1e-6), member


def test_several_teachers_need_teacher_of_with_one_valid_index_per_member(data):
    x, y = _small(data, 64)
    cohort = MLPCohort(8, [0, 1])
    objectives, teachers = [Objective(alpha=0.5), Objective(alpha=0.5)], torch.zeros(2, len(x), 10)
    with pytest.raises(ValueError, match="teacher_of=\\[one index per member, 0 to 1\\]"):
        train_cohort(cohort, x, y, objectives, teacher_logits=teachers, epochs=1, progress=False)
    for bad in ([0], [0, 2], [-1, 0]):
        with pytest.raises(ValueError, match="teacher_of must give each of the 2 members"):
            train_cohort(cohort, x, y, objectives, teacher_logits=teachers, teacher_of=bad, epochs=1, progress=False)
    with pytest.raises(ValueError, match="teacher_logits have shape"):
        train_cohort(cohort, x, y, objectives, teacher_logits=torch.zeros(2, len(x), 7), teacher_of=[0, 1], epochs=1,
                     progress=False)


# ----------------------------------------------------------------------------- each student trained once (store=True)

def _stored_run(data, seeds, objectives, teacher_logits, **kwargs):
    x, y = _small(data, 256)
    cohort = MLPCohort(16, seeds)
    result = train_cohort(cohort, x, y, objectives, teacher_logits=teacher_logits, epochs=2, batch_size=64,
                          progress=False, **kwargs)
    return cohort, result


def test_a_stored_student_is_loaded_bit_for_bit_and_only_the_missing_ones_train(data, capsys):
    kd.set_seed(3)
    teacher_logits = torch.randn(256, 10) * 3
    distilled = Objective(alpha=0.5, temperature=2.0)
    val = (data.val_x[:100], data.val_y[:100])
    reference, reference_result = _stored_run(data, [0, 1, 0, 1], [SCRATCH, SCRATCH, distilled, distilled],
                                              teacher_logits, val=val, eval_every=1)
    first, first_result = _stored_run(data, [0, 1, 0, 1], [SCRATCH, SCRATCH, distilled, distilled], teacher_logits,
                                      val=val, eval_every=1, store=True)
    assert first_result.loaded == 0 and first_result.val_accuracy == reference_result.val_accuracy
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), reference.parameters()))
    # another cohort, another order, one new member: two are read back, one trains
    again, again_result = _stored_run(data, [1, 2, 0], [distilled, distilled, SCRATCH], teacher_logits, store=True)
    assert again_result.loaded == 2 and "2 of 3 students loaded" in capsys.readouterr().out
    assert torch.equal(again.weight1[0], reference.weight1[3]) and torch.equal(again.weight2[2], reference.weight2[0])
    alone, _ = _stored_run(data, [2], [distilled], teacher_logits)
    assert torch.equal(again.weight1[1], alone.weight1[0])  # the new member trained as it would anywhere else
    # asked again with validation: the history comes back with the weights
    _, history = _stored_run(data, [0, 1], [distilled, distilled], teacher_logits, val=val, eval_every=1, store=True)
    assert history.loaded == 2 and history.val_accuracy == [row[2:] for row in reference_result.val_accuracy]


def test_a_stored_student_of_another_recipe_is_trained_again_never_served(data):
    kd.set_seed(4)
    teacher_logits = torch.randn(256, 10) * 3
    distilled = Objective(alpha=0.5, temperature=2.0)
    _stored_run(data, [0], [distilled], teacher_logits, store=True)
    assert _stored_run(data, [0], [distilled], teacher_logits, store=True)[1].loaded == 1
    assert _stored_run(data, [0], [distilled], teacher_logits * 2, store=True)[1].loaded == 0  # another teacher
    assert _stored_run(data, [0], [Objective(alpha=0.5, temperature=4.0)], teacher_logits, store=True)[1].loaded == 0
    assert _stored_run(data, [0], [distilled], teacher_logits, store=True, lr=1e-3)[1].loaded == 0  # another schedule
    val = (data.val_x[:50], data.val_y[:50])  # stored without a validation history: trained again to record it
    assert _stored_run(data, [0], [distilled], teacher_logits, store=True, val=val)[1].loaded == 0
    assert _stored_run(data, [0], [distilled], teacher_logits, store=True, val=val)[1].loaded == 1


def test_a_hinted_cohort_is_not_stored(data):
    x, y = _small(data, 64)
    cohort = MLPCohort(16, [0], feature_width=8)
    with pytest.raises(ValueError, match="hint regressors"):
        train_cohort(cohort, x, y, [Objective(feature_weight=1.0)], teacher_features=torch.randn(64, 8), epochs=1,
                     progress=False, store=True)


def test_stored_logits_are_computed_once_and_belong_to_their_weights_and_images(data, monkeypatch):
    kd.set_seed(5)
    model = kd.StudentMLP(hidden=16)
    images = data.test_x[:128]
    first = kd.stored_logits(model, images)
    assert torch.equal(first, kd.predict_logits(model, images))
    monkeypatch.setattr(kd.evaluate, "predict_logits", lambda *args, **kwargs: pytest.fail("computed twice"))
    assert torch.equal(kd.stored_logits(model, images), first)
    monkeypatch.undo()
    with torch.no_grad():
        model.classifier.bias += 1.0
    assert torch.allclose(kd.stored_logits(model, images), first + 1.0, atol=1e-5)  # other weights: computed again
    assert kd.stored_logits(model, images[:64]).shape == (64, 10)


def test_an_ensembles_stored_logits_are_its_own_to_the_bit_and_share_its_members_files(data, monkeypatch):
    members = []
    for seed in (1, 2, 3):
        kd.set_seed(seed)
        members.append(kd.StudentMLP(hidden=16))
    images = data.test_x[:96]
    ensemble = kd.models.Ensemble(members)
    assert torch.equal(kd.stored_logits(ensemble, images, batch_size=32), kd.predict_logits(ensemble, images, batch_size=32))
    expected = [kd.predict_logits(member, images, batch_size=32) for member in members]
    monkeypatch.setattr(kd.evaluate, "predict_logits", lambda *args, **kwargs: pytest.fail("computed twice"))
    for member, logits in zip(members, expected):  # notebook 06 reads each member's logits after 03 stored the ensemble's
        assert torch.equal(kd.stored_logits(member, images, batch_size=32), logits)


def test_a_fingerprint_refuses_what_it_cannot_hash_faithfully():
    assert kd.checkpoints.fingerprint(torch.ones(3)) != kd.checkpoints.fingerprint(torch.ones(3, 1))
    assert kd.checkpoints.fingerprint({"a": 1}) == kd.checkpoints.fingerprint({"a": 1})
    with pytest.raises(TypeError, match="weights_checksum"):
        kd.checkpoints.fingerprint({"weight": torch.ones(2)})


def test_a_cohort_result_says_where_its_training_time_went(data):
    kd.set_seed(6)
    teacher_logits = torch.randn(256, 10)
    _, first = _stored_run(data, [0, 1], [SCRATCH, SCRATCH], teacher_logits, store=True)
    assert first.trained == 2 and first.loaded == 0 and first.cost_seconds == first.seconds
    assert first.timing() == f"2 trained here in {first.seconds:.0f} s"
    _, mixed = _stored_run(data, [1, 2], [SCRATCH, SCRATCH], teacher_logits, store=True)
    assert (mixed.trained, mixed.loaded) == (1, 1) and mixed.stored_seconds == pytest.approx(first.seconds / 2)
    assert mixed.timing().endswith(f"1 loaded (trained before in {mixed.stored_seconds:.0f} s)")
