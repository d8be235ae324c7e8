"""Unit tests of kd_utils.lm_train (notebook 08's training) and of the generation cache it relies on."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from kd_utils import lm
from kd_utils import lm_train as lt

ROOT = Path(__file__).resolve().parent.parent
SMALL = lm.GPTConfig(vocab_size=11, context=12, layers=2, width=16, heads=2)


@pytest.fixture
def tokens():
    return torch.randint(0, 11, (2_000,), generator=torch.Generator().manual_seed(0))


def small(seed: int = 0) -> lm.TinyGPT:
    torch.manual_seed(seed)
    return lm.TinyGPT(SMALL).eval()


# ----------------------------------------------------------------------------- generation with a key/value cache


def test_cached_forward_gives_the_logits_of_the_full_forward():
    model = small()
    idx = torch.randint(0, 11, (3, 10), generator=torch.Generator().manual_seed(1))
    full = model(idx)
    cache = [{} for _ in model.blocks]
    steps = [model(idx[:, :4], cache)] + [model(idx[:, t:t + 1], cache) for t in range(4, 10)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("new_tokens", [8, 10])  # 3 + 10 = context + 1: the last token is never fed back
def test_cached_greedy_generation_equals_greedy_by_full_forward(new_tokens):
    model = small()
    prompt = torch.randint(0, 11, (2, 3), generator=torch.Generator().manual_seed(2))
    generated = lm.generate(model, prompt, new_tokens, top_k=1)
    idx = prompt
    for _ in range(new_tokens):
        idx = torch.cat([idx, model(idx)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(generated, idx)


def test_generation_of_a_window_and_its_next_token_uses_the_cache(monkeypatch):
    model = small()
    lengths = []
    original = model.forward
    monkeypatch.setattr(model, "forward", lambda idx, cache=None: lengths.append(idx.shape[1]) or original(idx, cache))
    lm.generate(model, torch.zeros(1, 4, dtype=torch.long), SMALL.context + 1 - 4)
    assert lengths == [4] + [1] * (SMALL.context - 4)


def test_cached_forward_refuses_more_than_the_context_and_blocks_after_a_fill():
    model = small()
    cache = [{} for _ in model.blocks]
    model(torch.zeros(1, 12, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="context is 12"):
        model(torch.zeros(1, 1, dtype=torch.long), cache)
    cache = [{} for _ in model.blocks]
    model(torch.zeros(1, 2, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="one new token"):
        model(torch.zeros(1, 2, dtype=torch.long), cache)


# ----------------------------------------------------------------------------- the objective


@pytest.mark.parametrize("settings, name", [
    ({"beta": 1.5}, "beta"), ({"lmbda": -0.1}, "lmbda"), ({"temperature": 0.0}, "temperature"),
    ({"sampling_temperature": -1.0}, "sampling_temperature"), ({"hard_weight": -1.0}, "hard_weight"),
    ({"soft_weight": float("nan")}, "soft_weight"), ({"label_smoothing": 1.0}, "label_smoothing"),
    ({"top_k": 0, "soft_weight": 1.0}, "top_k"),
])
def test_objective_refuses_bad_settings_naming_the_field(settings, name):
    with pytest.raises(ValueError, match=name):
        lt.LMObjective("bad", **settings)


def test_objective_refuses_to_learn_nothing_and_topk_beyond_forward_kl():
    with pytest.raises(ValueError, match="nothing is learned"):
        lt.LMObjective("empty", hard_weight=0.0, soft_weight=0.0)
    with pytest.raises(ValueError, match="forward KL off-policy only"):
        lt.LMObjective("top-k reverse", soft_weight=1.0, beta=1.0, top_k=4)


def test_soft_term_from_the_cache_equals_the_generalized_jsd_of_the_logits(tokens):
    teacher, student = small(0), small(1)
    schedule = lt.LMSchedule(steps=2, batch_size=4, warmup=1)
    windows = lt.training_windows(tokens, SMALL.context, schedule, seed=0)
    for temperature, beta in [(1.0, 0.0), (2.0, 0.5), (0.5, 1.0)]:
        cache = lt.TeacherCache(teacher, windows, temperature)
        objective = lt.LMObjective("kd", hard_weight=0.0, soft_weight=1.0, beta=beta, temperature=temperature)
        x = windows[0, :, :-1]
        logits = student(x)
        total, terms = lt._sequence_terms(objective, logits, windows[0, :, 1:], cache.log_probs[0], None, None)
        expected = lm.generalized_jsd(logits, teacher(x), beta=beta, temperature=temperature, scale=True)
        torch.testing.assert_close(total, expected, atol=1e-6, rtol=1e-5)
        assert set(terms) == {"soft"}


def test_hard_term_is_cross_entropy_with_the_next_character_and_label_smoothing_smooths(tokens):
    student = small(1)
    windows = lt.training_windows(tokens, SMALL.context, lt.LMSchedule(steps=1, batch_size=4, warmup=1), seed=0)
    logits = student(windows[0, :, :-1])
    for smoothing in (0.0, 0.1):
        objective = lt.LMObjective("scratch", label_smoothing=smoothing)
        total, _ = lt._sequence_terms(objective, logits, windows[0, :, 1:], None, None, None)
        expected = F.cross_entropy(logits.reshape(-1, 11), windows[0, :, 1:].reshape(-1), label_smoothing=smoothing)
        torch.testing.assert_close(total, expected)


def test_topk_cache_with_k_covering_the_vocabulary_teaches_like_the_full_cache(tokens):
    teacher = small(0)
    schedule = lt.LMSchedule(steps=3, batch_size=4, warmup=1)
    windows = lt.training_windows(tokens, SMALL.context, schedule, seed=0)
    cache = lt.TeacherCache(teacher, windows)
    results = []
    for top_k in (None, 11):
        objective = lt.LMObjective("kd", hard_weight=0.0, soft_weight=1.0, top_k=top_k)
        student = small(1)
        lt.train_lm(student, windows, objective, schedule, seed=0, cache=cache, progress=False)
        results.append(student.head.weight.detach().clone())
    torch.testing.assert_close(results[0], results[1], atol=1e-5, rtol=1e-4)


# ----------------------------------------------------------------------------- the loop


def test_training_windows_are_the_same_for_every_objective_and_differ_between_seeds(tokens):
    schedule = lt.LMSchedule(steps=4, batch_size=3)
    first = lt.training_windows(tokens, 12, schedule, seed=0)
    assert first.shape == (4, 3, 13)
    assert torch.equal(first, lt.training_windows(tokens, 12, schedule, seed=0))
    assert not torch.equal(first, lt.training_windows(tokens, 12, schedule, seed=1))


def test_same_seed_trains_the_same_student_and_the_loss_falls(tokens):
    schedule = lt.LMSchedule(steps=40, batch_size=8, lr=1e-2, warmup=5)
    windows = lt.training_windows(tokens[:200], SMALL.context, schedule, seed=0)
    runs = []
    for _ in range(2):
        student = small(3)
        history = lt.train_lm(student, windows, lt.LMObjective("scratch"), schedule, seed=0, progress=False, every=10)
        runs.append(student.head.weight.detach().clone())
    assert torch.equal(runs[0], runs[1])
    assert history.losses[-1] < history.losses[0]


def test_on_policy_steps_learn_only_where_the_student_wrote(tokens, monkeypatch):
    teacher, student = small(0), small(1)
    schedule = lt.LMSchedule(steps=2, batch_size=2, warmup=1)
    windows = lt.training_windows(tokens, SMALL.context, schedule, seed=0)
    seen = []
    original = lt._sequence_terms

    def spy(objective, logits, targets, teacher_log_probs, topk, labels):
        seen.append(labels)
        return original(objective, logits, targets, teacher_log_probs, topk, labels)

    monkeypatch.setattr(lt, "_sequence_terms", spy)
    objective = lt.LMObjective("gkd", hard_weight=0.0, soft_weight=1.0, beta=0.5, lmbda=1.0)
    lt.train_lm(student, windows, objective, schedule, seed=0, teacher=teacher, prompt=4, progress=False)
    assert all(labels is not None for labels in seen)
    assert (seen[0][:, :3] == lm.IGNORE_INDEX).all() and (seen[0][:, 3:] != lm.IGNORE_INDEX).all()


def test_train_lm_names_what_is_missing_or_mismatched(tokens):
    schedule = lt.LMSchedule(steps=2, batch_size=2, warmup=1)
    windows = lt.training_windows(tokens, SMALL.context, schedule, seed=0)
    kd = lt.LMObjective("kd", hard_weight=0.0, soft_weight=1.0)
    with pytest.raises(ValueError, match="pass teacher="):
        lt.train_lm(small(), windows, kd, schedule, progress=False)
    with pytest.raises(ValueError, match="on-policy steps need the live teacher"):
        lt.train_lm(small(), windows, lt.LMObjective("gkd", hard_weight=0, soft_weight=1, lmbda=0.5), schedule,
                    cache=lt.TeacherCache(small(), windows), progress=False)
    with pytest.raises(ValueError, match="T=1.0.*T=2"):
        lt.train_lm(small(), windows, lt.LMObjective("kd", hard_weight=0, soft_weight=1, temperature=2.0), schedule,
                    cache=lt.TeacherCache(small(), windows, 1.0), progress=False)
    other = lm.TinyGPT(vocab_size=12, context=12, layers=1, width=16, heads=2)
    with pytest.raises(ValueError, match="vocab_size"):
        lt.train_lm(small(), windows, kd, schedule, teacher=other, progress=False)
    with pytest.raises(ValueError, match="2 steps of batches but the schedule trains 3"):
        lt.train_lm(small(), windows, lt.LMObjective("scratch"), lt.LMSchedule(steps=3, batch_size=2), progress=False)


def test_teacher_text_windows_start_with_real_text_and_are_written_by_the_teacher(tokens):
    teacher = small(0)
    windows = lt.teacher_text_windows(teacher, tokens, count=5, context=SMALL.context, prompt=4, seed=0)
    assert windows.shape == (5, SMALL.context + 1)
    text = "".join(map(chr, tokens.tolist()))
    for row in windows[:, :4]:
        assert "".join(map(chr, row.tolist())) in text


# ----------------------------------------------------------------------------- the teacher's checkpoint


def test_lm_teacher_is_trained_once_then_loaded_and_retrained_when_its_recipe_changes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KD_SMOKE", "1")
    corpus = lm.tiny_corpus()
    monkeypatch.setitem(lt.TEACHER_SCHEDULE, "smoke", lt.LMSchedule(steps=3, batch_size=2, warmup=1))
    path = tmp_path / "lm_teacher.pt"
    teacher, metadata = lt.load_or_train_lm_teacher(corpus, path=path, progress=False)
    assert "Trained" in capsys.readouterr().out and path.exists()
    loaded, again = lt.load_or_train_lm_teacher(corpus, path=path, progress=False)
    assert "Loaded" in capsys.readouterr().out and again["val_nll"] == metadata["val_nll"]
    monkeypatch.setitem(lt.TEACHER_SCHEDULE, "smoke", lt.LMSchedule(steps=4, batch_size=2, warmup=1))
    lt.load_or_train_lm_teacher(corpus, path=path, progress=False)
    assert "steps=3 where the recipe says steps=4" in capsys.readouterr().out


# ----------------------------------------------------------------------------- the search behind notebook 08


def test_search_smoke_runs_and_its_report_applies_the_declared_rule(tmp_path):
    env = {**os.environ, "KD_CHECKPOINT_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / "search_lm_kd.py"), "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    report_path = Path(done.stdout.strip().splitlines()[-1].split("report: ")[1])
    report = json.loads(report_path.read_text())
    best = min((c for c in report["cells"] if c["method"] != "scratch"), key=lambda c: c["val_nll"])
    assert report["distilled"]["cell"] == best["cell"]
    assert set(report["confirmation"]) == {"native", "avx2"}
    assert all(math.isfinite(c["gain_nats"]) for c in report["confirmation"].values())


def test_recipes_hold_what_the_search_chose_and_the_report_is_the_rule_applied_to_the_table():
    import importlib.util

    sys.path.insert(0, str(ROOT / "experiments"))  # the script imports results_table from its own folder
    spec = importlib.util.spec_from_file_location("search_lm_kd", ROOT / "experiments" / "search_lm_kd.py")
    search = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(search)
    report = lt.search_report()
    assert search.report(search.read_rows(search.RESULTS), smoke=False) == report
    assert lt.SCRATCH_LR == report["scratch"]["lr"]
    assert lt.DISTILLED_LR == report["distilled"]["lr"]
    assert (lt.DISTILLED.temperature, lt.DISTILLED.hard_weight, lt.DISTILLED.beta) == (
        report["distilled"]["temperature"], report["distilled"]["hard_weight"], 0.0)
    rows = search.read_rows(search.RESULTS)
    assert {r["cpu_capability"] for r in rows if r["isa"] == "avx2"} == {"AVX2"}
    assert all(r["commit"] and r["torch"] and r["threads"] for r in rows)


def _tiny_contest():
    """A tiny corpus, an untrained 1-layer teacher of its vocabulary and a 3-step schedule: train_students in seconds."""
    corpus = lm.tiny_corpus()
    teacher = lm.TinyGPT(vocab_size=corpus.tokenizer.vocab_size, context=16, layers=1, width=16, heads=2).eval()
    return corpus, teacher, lt.LMSchedule(steps=3, batch_size=2, warmup=1)


def test_train_students_pairs_every_objective_on_a_seed_and_scores_what_students_write(monkeypatch):
    monkeypatch.setenv("KD_SMOKE", "1")
    corpus, teacher, schedule = _tiny_contest()
    recipes = [(lt.LMObjective("scratch"), 1e-2), (lt.LMObjective("seq", seq_kd=True), 1e-2),
               (lt.LMObjective("kd", hard_weight=0, soft_weight=1), 1e-2),
               (lt.LMObjective("gkd", hard_weight=0, soft_weight=1, lmbda=1.0), 1e-2)]
    runs = lt.train_students(teacher, corpus, recipes, [0, 1], schedule, progress=False)
    assert set(runs.histories) == {"scratch", "seq", "kd", "gkd"} and all(len(h) == 2 for h in runs.histories.values())
    assert all(math.isfinite(bits) for name in runs.histories for bits in runs.val_bits(name))
    assert set(runs.teacher_seconds) == {"cache", "written text"}
    val = corpus.tokenizer.encode(corpus.val)
    score = lt.score_samples(runs.students["kd"][0], teacher, corpus.tokenizer, val, count=4, prompt=4)
    again = lt.score_samples(runs.students["kd"][0], teacher, corpus.tokenizer, val, count=4, prompt=4)
    assert score == again and len(score["texts"]) == 4 and all(len(text) == 16 for text in score["texts"])
    assert 0 < score["distinct_1"] <= 1 and score["teacher_bits_per_char"] > 0


def test_worker_processes_train_the_same_students_as_one_process(monkeypatch):
    monkeypatch.setenv("KD_SMOKE", "1")
    corpus, teacher, schedule = _tiny_contest()
    recipes = [(lt.LMObjective("scratch"), 1e-2), (lt.LMObjective("seq", seq_kd=True), 1e-2),
               (lt.LMObjective("kd", hard_weight=0, soft_weight=1, temperature=2.0), 1e-2),
               (lt.LMObjective("gkd", hard_weight=0, soft_weight=1, lmbda=0.5), 1e-2)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what each of two workers gets on two cores: then the runs match to the bit
    try:
        alone = lt.train_students(teacher, corpus, recipes, [0, 1], schedule, progress=False, workers=1)
    finally:
        torch.set_num_threads(threads)
    side_by_side = lt.train_students(teacher, corpus, recipes, [0, 1], schedule, progress=False, workers=2)
    assert list(side_by_side.histories) == list(alone.histories) == ["scratch", "seq", "kd", "gkd"]
    for name in alone.histories:
        assert [h.seed for h in side_by_side.histories[name]] == [0, 1]
        assert side_by_side.val_bits(name) == alone.val_bits(name)
        for a, b in zip(alone.students[name], side_by_side.students[name]):
            assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(ValueError, match="workers must be at least 1"):
        lt.train_students(teacher, corpus, recipes, [0], schedule, progress=False, workers=0)


def test_readme_quotes_the_confirmation_of_notebook_08s_regime():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    confirmation = lt.search_report()["confirmation"]
    row = next(line for line in readme.splitlines() if line.startswith("| **08:**"))
    for isa in ("native", "avx2"):
        c = confirmation[isa]
        assert f"{c['gain_nats']:+.3f} ± {c['half_width']:.3f}, {c['verdict']}" in row
