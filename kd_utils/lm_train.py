"""Notebook 08's training: one loop for the teacher and every student of a character language model.

A student learns from an ``LMObjective``, whose fields carry Hugging Face TRL ``GKDConfig``'s names and
meanings so that a learner can move to ``GKDTrainer``:

- ``hard_weight``: cross-entropy with the next character of the text (1 and no soft term: training from scratch);
- ``soft_weight``, ``beta`` and ``temperature``: the generalized JSD with the teacher (β = 0 forward
  KL(teacher ‖ student), β = 1 reverse KL, ``kd_utils.lm.generalized_jsd``), at the loss temperature;
- ``lmbda``: the fraction of steps on which the student writes its own continuation of a real prompt and
  the teacher scores it (on-policy, GKD); ``sampling_temperature`` is the student's when it samples;
- ``seq_kd``: train on text the teacher wrote instead of the corpus (sequence-level KD, Kim & Rush 2016);
- ``top_k``: learn only from the teacher's k most likely next characters per position (a top-k cache);
- ``label_smoothing``: the control that asks whether a teacher only smooths the targets.

On an on-policy step there is no text to take the hard loss from, so only the soft term trains there.

Every student sees the same windows of text for a given seed, in the same order, so that two objectives
are compared on paired runs; the teacher's log-probabilities on those windows are computed once per seed
(``TeacherCache``) and shared by every off-policy student, which is the offline distillation of large models.
"""

from __future__ import annotations

import functools
import json
import math
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import config
from .checkpoints import CheckpointMismatchError, load_checkpoint, save_checkpoint
from .lm import (
    IGNORE_INDEX,
    TinyGPT,
    char_batches,
    check_compatible,
    distinct_n,
    generate,
    nll_nats,
    topk_forward_kl,
    topk_teacher_cache,
)
from .losses import Objective, log_soft_targets, objective_loss
from .recipes import recipe_difference


@dataclass(frozen=True)
class LMObjective:
    """What a language-model student learns from; the names and meanings are TRL ``GKDConfig``'s."""

    name: str
    hard_weight: float = 1.0
    soft_weight: float = 0.0
    beta: float = 0.0
    temperature: float = 1.0
    lmbda: float = 0.0
    seq_kd: bool = False
    sampling_temperature: float = 1.0
    top_k: int | None = None
    label_smoothing: float = 0.0

    def __post_init__(self):
        for name in ("hard_weight", "soft_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{self.name}: {name} must be a finite number >= 0, got {value!r}")
        if self.soft_weight > 1:
            raise ValueError(f"{self.name}: soft_weight must be at most 1 (it is the objective's α in kd.objective_loss), "
                             f"got {self.soft_weight!r}")
        if self.hard_weight == 0 and self.soft_weight == 0:
            raise ValueError(f"{self.name}: hard_weight and soft_weight are both 0, so nothing is learned")
        for name in ("beta", "lmbda"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{self.name}: {name} must be a number in [0, 1], got {value!r}")
        for name in ("temperature", "sampling_temperature"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
                raise ValueError(f"{self.name}: {name} must be a finite number > 0, got {value!r}")
        if self.top_k is not None:
            if not isinstance(self.top_k, int) or self.top_k < 1:
                raise ValueError(f"{self.name}: top_k must be None (the full distribution) or an integer >= 1, "
                                 f"got {self.top_k!r}")
            if self.beta != 0 or self.lmbda != 0:
                raise ValueError(f"{self.name}: a top-k cache holds the teacher's top k on the corpus, so it serves "
                                 "forward KL off-policy only (beta=0, lmbda=0)")
        if not isinstance(self.label_smoothing, (int, float)) or not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"{self.name}: label_smoothing must be a number in [0, 1), got {self.label_smoothing!r}")

    @property
    def needs_teacher(self) -> bool:
        return self.soft_weight > 0 or self.seq_kd


@dataclass(frozen=True)
class LMSchedule:
    """How long and how fast a model trains: AdamW, linear warm-up, cosine decay to lr/10, gradient clipping."""

    steps: int
    batch_size: int = 32
    lr: float = 3e-3
    warmup: int = 50
    weight_decay: float = 0.1
    clip: float = 1.0

    def lr_at(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        progress = (step - self.warmup) / max(1, self.steps - self.warmup)
        return self.lr / 10 + 0.5 * (self.lr - self.lr / 10) * (1 + math.cos(math.pi * min(progress, 1.0)))


@dataclass
class LMHistory:
    """One run: the loss every `every` steps, the validation NLL at the end, and the seconds it took."""

    name: str
    seed: int
    losses: list[float] = field(default_factory=list)
    val_nll: float = math.nan
    seconds: float = math.nan

    @property
    def val_bits_per_char(self) -> float:
        return self.val_nll / math.log(2)


def training_windows(tokens: Tensor, context: int, schedule: LMSchedule, seed: int) -> Tensor:
    """Return the (steps, batch, context + 1) windows a run with this seed trains on: the same for every objective."""
    generator = torch.Generator().manual_seed(10_000 + seed)
    x, y = char_batches(tokens, context, schedule.steps * schedule.batch_size, generator)
    return torch.cat([x, y[:, -1:]], dim=1).view(schedule.steps, schedule.batch_size, context + 1)


class TeacherCache:
    """The teacher's log-probabilities at T on every training window of one seed, computed once (float32).

    ``top_k(k)`` keeps the k largest per position (``kd_utils.lm.topk_teacher_cache``), as large-model
    distillation does offline; ``kd_utils.lm.cache_bytes`` gives what storing them would take.
    """

    def __init__(self, teacher: nn.Module, windows: Tensor, temperature: float = 1.0, batch: int = 64):
        self.temperature = temperature
        rows = []
        with torch.no_grad():
            teacher.eval()
            flat = windows.reshape(-1, windows.shape[-1])[:, :-1]
            for start in range(0, len(flat), batch):
                logits = teacher(flat[start:start + batch]).float()
                rows.append(F.log_softmax(logits / temperature, dim=-1))
        self.log_probs = torch.cat(rows).view(*windows.shape[:2], windows.shape[-1] - 1, -1)

    @classmethod
    def from_log_probs(cls, log_probs: Tensor, temperature: float) -> TeacherCache:
        """Wrap log-probabilities computed before (e.g. read back from a file) as a cache at `temperature`."""
        cache = cls.__new__(cls)
        cache.temperature, cache.log_probs = temperature, log_probs
        return cache

    def top_k(self, k: int) -> tuple[Tensor, Tensor]:
        return topk_teacher_cache(self.log_probs.float(), k)


@functools.lru_cache(maxsize=64)
def course_objective(objective: LMObjective, on_policy: bool) -> Objective:
    """Return the ``kd.Objective`` of a language-model step: the same terms through the course's one ``objective_loss``.

    TRL weighs the terms apart (``hard_weight·CE + soft_weight·T²·JSD_β``): the soft weight is α and the hard
    weight its own field. An on-policy step has no text to learn the next character from, so no hard term.
    """
    return Objective(alpha=objective.soft_weight, temperature=objective.temperature,
                     smoothing=objective.label_smoothing, hard_weight=0.0 if on_policy else objective.hard_weight,
                     jsd_beta=objective.beta if objective.beta > 0 else None)


def _sequence_terms(objective: LMObjective, logits: Tensor, targets: Tensor, teacher_log_probs: Tensor | None,
                    topk: tuple[Tensor, Tensor] | None, labels: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
    """The loss of one step: positions are just another batch axis of ``kd.objective_loss`` (masked ones dropped)."""
    if topk is not None:  # the top-k cache's truncated forward KL (the cache serves forward KL off-policy only)
        terms = {}
        if objective.hard_weight > 0:
            terms["hard"] = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                            label_smoothing=objective.label_smoothing)
        terms["soft"] = topk_forward_kl(logits, *topk, labels=labels, temperature=objective.temperature, scale=True)
        weights = {"hard": objective.hard_weight, "soft": objective.soft_weight}
        return sum(weights[name] * term for name, term in terms.items()), terms
    vocab = logits.shape[-1]
    rows, targets = logits.reshape(-1, vocab), targets.reshape(-1)
    teacher_rows = None
    if objective.soft_weight > 0:
        # The cache holds log-probabilities at T; softening them again at T must give them back: pass T·log p.
        teacher_rows = log_soft_targets(teacher_log_probs.float().reshape(-1, vocab) * objective.temperature,
                                        objective.temperature)
    if labels is not None:  # on-policy: learn only where the student wrote
        keep = labels.reshape(-1) != IGNORE_INDEX
        if not keep.any():
            return rows[keep].sum(), {}  # every position masked: a 0 attached to the graph
        rows, targets = rows[keep], targets[keep]
        teacher_rows = None if teacher_rows is None else teacher_rows[keep]
    return objective_loss(rows, targets, course_objective(objective, labels is not None), teacher_rows, all_labelled=True)


def teacher_text_windows(teacher: nn.Module, tokens: Tensor, count: int, context: int, prompt: int = 8,
                         temperature: float = 1.0, seed: int = 0, batch: int = 256) -> Tensor:
    """Return `count` windows of context + 1 tokens, each a real `prompt` followed by the teacher's own continuation.

    The training text of sequence-level KD: the teacher writes, the student reads.
    """
    generator = torch.Generator().manual_seed(20_000 + seed)
    starts, _ = char_batches(tokens, prompt, count, generator)
    out = [generate(teacher, starts[first:first + batch], context + 1 - prompt, temperature, generator=generator)
           for first in range(0, count, batch)]
    return torch.cat(out)


def train_lm(model: TinyGPT, windows: Tensor, objective: LMObjective, schedule: LMSchedule, *, seed: int = 0,
             teacher: nn.Module | None = None, cache: TeacherCache | None = None, val_tokens: Tensor | None = None,
             prompt: int = 16, progress: bool = True, every: int = 25) -> LMHistory:
    """Train `model` in place on `windows` (steps, batch, context + 1) with `objective`; return its LMHistory.

    Off-policy soft terms read the teacher's log-probabilities from `cache` (or run `teacher` when no cache
    is given); on a fraction ``objective.lmbda`` of the steps, chosen by the seed, the student continues the
    first `prompt` characters of each window itself and learns from the teacher's scores of its own text
    on the positions it wrote (the prompt is masked, as TRL masks it).
    """
    if objective.needs_teacher and teacher is None and cache is None:
        raise ValueError(f"{objective.name} learns from a teacher: pass teacher= (or cache= for off-policy terms)")
    if teacher is not None:
        check_compatible(teacher, model)
        teacher.eval()
    if objective.lmbda > 0 and teacher is None:
        raise ValueError(f"{objective.name}: on-policy steps need the live teacher to score the student's text")
    if objective.soft_weight > 0 and objective.lmbda < 1 and cache is not None and cache.temperature != objective.temperature:
        raise ValueError(f"the cache holds the teacher at T={cache.temperature}, the objective asks for "
                         f"T={objective.temperature}")
    steps, _, width = windows.shape
    if steps != schedule.steps:
        raise ValueError(f"windows hold {steps} steps of batches but the schedule trains {schedule.steps}")
    context = width - 1
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    on_policy = torch.rand(steps, generator=generator) < objective.lmbda
    topk = cache.top_k(objective.top_k) if cache is not None and objective.top_k is not None else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=schedule.lr, betas=(0.9, 0.99),
                                  weight_decay=schedule.weight_decay)
    history = LMHistory(name=objective.name, seed=seed)
    bar = config.progress_bar(steps, f"{objective.name} seed {seed}", progress)
    start_time = time.perf_counter()
    model.train()
    running = 0.0
    try:
        for step in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = schedule.lr_at(step)
            window = windows[step]
            labels = None
            if on_policy[step]:
                window = generate(model, window[:, :prompt], context + 1 - prompt, objective.sampling_temperature,
                                  generator=generator)
                model.train()
                labels = window[:, 1:].clone()
                labels[:, :prompt - 1] = IGNORE_INDEX  # learn only where the student wrote
            x, targets = window[:, :-1], window[:, 1:]
            teacher_log_probs = step_topk = None
            if objective.soft_weight > 0:
                if cache is not None and not on_policy[step]:
                    teacher_log_probs = cache.log_probs[step]
                    step_topk = (topk[0][step], topk[1][step]) if topk is not None else None
                else:
                    with torch.no_grad():
                        teacher_log_probs = F.log_softmax(teacher(x).float() / objective.temperature, dim=-1)
            logits = model(x)
            loss, terms = _sequence_terms(objective, logits, targets if labels is None else labels,
                                          teacher_log_probs, step_topk, labels)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{objective.name} seed {seed}: the loss became {loss.item()} at step "
                                         f"{step + 1}; lower the learning rate (now {schedule.lr_at(step):.3g})")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), schedule.clip)
            optimizer.step()
            running += loss.item()
            if (step + 1) % every == 0:
                history.losses.append(running / every)
                running = 0.0
                bar.set_postfix(loss=f"{history.losses[-1]:.3f}", refresh=False)
            bar.update(1)
    finally:
        bar.close()
    history.seconds = time.perf_counter() - start_time
    model.eval()
    if val_tokens is not None:
        history.val_nll = nll_nats(model, val_tokens)
    return history


# ----------------------------------------------------------------------------- recipes and the teacher

# Sizes and schedules of notebook 08, one per mode; experiments/search_lm_kd.py chose the students' regime.
TEACHER_SIZE = {"full": {"context": 64, "layers": 4, "width": 128, "heads": 4},  # nanoGPT's CPU Shakespeare run
                "smoke": {"context": 32, "layers": 2, "width": 32, "heads": 2}}
TEACHER_SCHEDULE = {"full": LMSchedule(steps=1200, batch_size=12, lr=2e-3, warmup=100),
                    "smoke": LMSchedule(steps=200, batch_size=8, lr=3e-3, warmup=10)}
STUDENT_SIZE = {"full": {"layers": 2, "width": 64, "heads": 4}, "smoke": {"layers": 1, "width": 16, "heads": 2}}
# The students' budget (fixed before the search; the learning rate below is the search's default, each cell sets its own)
STUDENT_SCHEDULE = {"full": LMSchedule(steps=300, batch_size=16, lr=6e-3, warmup=30),
                    "smoke": LMSchedule(steps=20, batch_size=8, lr=6e-3, warmup=3)}


def teacher_recipe() -> dict:
    """Return what the language-model teacher of the current mode is trained with (stored in its checkpoint)."""
    mode = config.mode_name()
    return {"architecture": "TinyGPT", **TEACHER_SIZE[mode], **asdict(TEACHER_SCHEDULE[mode]), "seed": 0}


def lm_teacher_path() -> Path:
    return config.checkpoint_dir() / "lm_teacher.pt"


def load_or_train_lm_teacher(corpus, retrain: bool = False, path: Path | str | None = None,
                             progress: bool = True) -> tuple[TinyGPT, dict]:
    """Return (teacher, metadata): notebook 08's TinyGPT loaded from its checkpoint, or trained and saved if missing.

    A checkpoint trained with another recipe, or for another vocabulary, is not used: the teacher is retrained
    and the message names the difference.
    """
    path = Path(path) if path is not None else lm_teacher_path()
    recipe = teacher_recipe()
    mode = config.mode_name()
    model = TinyGPT(vocab_size=corpus.tokenizer.vocab_size, **TEACHER_SIZE[mode])
    if path.exists() and not retrain:
        try:
            teacher, metadata = load_checkpoint(path, model)
            difference = recipe_difference(metadata, recipe) if "recipe" in metadata else "no recorded recipe"
            differences = [difference] if difference else []
            if metadata.get("vocabulary") != corpus.tokenizer.vocabulary:
                differences.append("another vocabulary")
            if not differences:
                print(f"Loaded the language-model teacher from {config.relative_path(path)}: validation "
                      f"{metadata['val_nll']:.3f} nats/char ({metadata['val_nll'] / math.log(2):.3f} bits/char), "
                      f"trained in {metadata['seconds']:.0f} s")
                return teacher.eval(), metadata
            print(f"Retraining: {config.relative_path(path)} was trained with {'; '.join(differences)}")
        except CheckpointMismatchError as error:
            print(f"Retraining: {error}")
    schedule = TEACHER_SCHEDULE[mode]
    torch.manual_seed(0)
    teacher = TinyGPT(vocab_size=corpus.tokenizer.vocab_size, **TEACHER_SIZE[mode])
    tokens = corpus.tokenizer.encode(corpus.train)
    windows = training_windows(tokens, teacher.config.context, schedule, seed=0)
    history = train_lm(teacher, windows, LMObjective("teacher"), schedule, seed=0,
                       val_tokens=corpus.tokenizer.encode(corpus.val), progress=progress, every=max(1, schedule.steps // 12))
    metadata = {"recipe": recipe, "vocabulary": corpus.tokenizer.vocabulary, "val_nll": history.val_nll,
                "seconds": history.seconds, "losses": history.losses}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(teacher, path, metadata)
    print(f"Trained the language-model teacher in {history.seconds:.0f} s: validation {history.val_nll:.3f} nats/char "
          f"({history.val_bits_per_char:.3f} bits/char); saved to {config.relative_path(path)}")
    return teacher.eval(), metadata


def new_student(teacher: TinyGPT, seed: int) -> TinyGPT:
    """Return a freshly initialised student of the current mode's size, sharing the teacher's vocabulary and context."""
    torch.manual_seed(seed)
    return TinyGPT(vocab_size=teacher.config.vocab_size, context=teacher.config.context,
                   **STUDENT_SIZE[config.mode_name()])


# ----------------------------------------------------------------------------- notebook 08's contest


@dataclass
class StudentRuns:
    """Every objective × seed of a contest: the histories, the trained students, and the teacher's seconds."""

    seeds: list[int]
    histories: dict[str, list[LMHistory]] = field(default_factory=dict)
    students: dict[str, list[TinyGPT]] = field(default_factory=dict)
    teacher_seconds: dict[str, float] = field(default_factory=dict)

    def val_bits(self, name: str) -> list[float]:
        return [history.val_bits_per_char for history in self.histories[name]]

    def seconds(self, name: str) -> float:
        """Mean seconds of one run's training (the shared teacher cache and written text are in teacher_seconds)."""
        return sum(history.seconds for history in self.histories[name]) / len(self.seeds)


def default_workers() -> int:
    """How many processes train notebook 08's students side by side: one per CPU core, at most 4 (1 on a GPU).

    A 2-layer, width-64 student is too small for a second thread to speed it up (measured on 2 cores: 100 steps
    of forward-KL training took 3.5 s with one thread and with two), so two students on two cores, one thread
    each, train in the time of one.
    """
    if torch.cuda.is_available():
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def _train_task(task: dict) -> tuple[LMHistory, dict[str, Tensor]]:
    """Train one student of `train_students` in a worker process; return its history and its trained weights."""
    torch.set_num_threads(task["threads"])
    folder = Path(task["folder"])
    teacher = torch.load(folder / "teacher.pt", weights_only=False)
    data = torch.load(folder / task["data"], mmap=True, weights_only=True)
    cache = None
    if task["cache"] is not None:
        cache = TeacherCache.from_log_probs(torch.load(folder / task["cache"], mmap=True, weights_only=True),
                                            task["objective"].temperature)
    student = task["student"]
    history = train_lm(student, data, task["objective"], task["schedule"], seed=task["seed"], teacher=teacher,
                       cache=cache, val_tokens=torch.load(folder / "val.pt", mmap=True, weights_only=True),
                       progress=False)
    return history, student.state_dict()


def _cache_job(folder: str, seed: int, temperature: float, threads: int) -> tuple[str, float]:
    """Compute the teacher's cache of one seed's windows at `temperature` into a file; return its name and seconds."""
    torch.set_num_threads(threads)
    start = time.perf_counter()
    teacher = torch.load(Path(folder) / "teacher.pt", weights_only=False)
    windows = torch.load(Path(folder) / f"windows_{seed}.pt", weights_only=True)
    name = f"cache_{seed}_T{temperature:g}.pt"
    torch.save(TeacherCache(teacher, windows, temperature).log_probs, Path(folder) / name)
    return name, time.perf_counter() - start


def _written_job(folder: str, count: int, context: int, threads: int) -> float:
    """Have the teacher write sequence-level KD's `count` windows into a file, once for every seed; return seconds."""
    torch.set_num_threads(threads)
    start = time.perf_counter()
    teacher = torch.load(Path(folder) / "teacher.pt", weights_only=False)
    tokens = torch.load(Path(folder) / "tokens.pt", mmap=True, weights_only=True)
    torch.save(teacher_text_windows(teacher, tokens, count, context), Path(folder) / "written.pt")
    return time.perf_counter() - start


class _InlinePool:
    """What ``ProcessPoolExecutor`` offers, run here, one job at a time, when there is one worker (or a GPU)."""

    def submit(self, function, *args) -> Future:
        future: Future = Future()
        threads = torch.get_num_threads()
        try:
            future.set_result(function(*args))
        except Exception as error:  # raised again by future.result(), as a worker's would be
            future.set_exception(error)
        finally:
            torch.set_num_threads(threads)
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def train_students(teacher: TinyGPT, corpus, recipes: list[tuple[LMObjective, float]], seeds: list[int],
                   schedule: LMSchedule | None = None, progress: bool = True, workers: int | None = None) -> StudentRuns:
    """Train one student per (objective, learning rate) and seed on the same windows per seed; return the StudentRuns.

    For each seed the teacher's log-probabilities on the windows are computed once per loss temperature and
    shared by every off-policy objective; sequence-level KD trains on as many windows of the teacher's own text.
    Every run is independent, so `workers` processes (``default_workers()``: one per core) do the work side by
    side, one thread each: first the teacher's caches and its text, then each student as soon as what it learns
    from is ready. They share files, not memory. A run's result depends on its thread count (rounding), not on
    which process trains it: one worker with one thread trains the same students, to the bit, as two.
    """
    schedule = schedule or STUDENT_SCHEDULE[config.mode_name()]
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    tokens, val = corpus.tokenizer.encode(corpus.train), corpus.tokenizer.encode(corpus.val)
    context = teacher.config.context
    runs = StudentRuns(seeds=list(seeds))
    tasks = [{"objective": objective, "schedule": replace(schedule, lr=lr), "seed": seed, "student": new_student(teacher, seed)}
             for objective, lr in recipes for seed in seeds]
    threads = max(1, torch.get_num_threads() // workers) if workers > 1 else torch.get_num_threads()

    def needs(task: dict) -> str | None:
        objective = task["objective"]
        return "written" if objective.seq_kd else "cache" if objective.soft_weight > 0 and objective.lmbda < 1 else None

    results: dict[int, tuple[LMHistory, dict[str, Tensor]]] = {}
    bar = config.progress_bar(len(tasks), f"{len(tasks)} students ({workers} at a time)", progress)
    pool = (ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))  # fork: unsafe
            if workers > 1 else _InlinePool())  # once torch's threads have started
    try:
        with tempfile.TemporaryDirectory(prefix="kd_students_") as folder:
            torch.save(teacher, Path(folder) / "teacher.pt")
            torch.save(val, Path(folder) / "val.pt")
            for seed in seeds:
                torch.save(training_windows(tokens, context, schedule, seed), Path(folder) / f"windows_{seed}.pt")
            for task in tasks:
                task.update(folder=folder, threads=threads, data=f"windows_{task['seed']}.pt", cache=None)
            jobs: dict[Future, tuple] = {}
            # the teacher's work first (every distilled student waits for it), then the students that need none of
            # it, the longest first (on-policy students write their own text)
            for seed, temperature in sorted({(task["seed"], task["objective"].temperature) for task in tasks
                                             if needs(task) == "cache"}):
                jobs[pool.submit(_cache_job, folder, seed, temperature, threads)] = ("cache", seed, temperature)
            if any(needs(task) == "written" for task in tasks):
                torch.save(tokens, Path(folder) / "tokens.pt")
                jobs[pool.submit(_written_job, folder, schedule.steps * schedule.batch_size, context, threads)] = ("written",)
            independent = [i for i, task in enumerate(tasks) if needs(task) is None]
            for index in sorted(independent, key=lambda i: -tasks[i]["objective"].lmbda):
                jobs[pool.submit(_train_task, tasks[index])] = ("student", index)
            while jobs:
                done, _ = wait(list(jobs), return_when=FIRST_COMPLETED)
                for future in done:
                    job = jobs.pop(future)
                    if job[0] == "student":
                        results[job[1]] = future.result()
                        bar.update(1)
                        continue
                    ready = []
                    if job[0] == "cache":
                        name, seconds = future.result()
                        runs.teacher_seconds["cache"] = runs.teacher_seconds.get("cache", 0.0) + seconds
                        for index, task in enumerate(tasks):
                            if needs(task) == "cache" and (task["seed"], task["objective"].temperature) == job[1:]:
                                task["cache"] = name
                                ready.append(index)
                    else:  # sequence-level KD: the teacher wrote its text once (Kim & Rush), each seed reads it in its order
                        runs.teacher_seconds["written text"] = future.result()
                        written = torch.load(Path(folder) / "written.pt", weights_only=True)
                        for index, task in enumerate(tasks):
                            if needs(task) == "written":
                                task["data"] = f"written_{task['seed']}.pt"
                                if not (Path(folder) / task["data"]).exists():  # one file per seed, for every seq-KD recipe
                                    order = torch.randperm(len(written), generator=torch.Generator().manual_seed(task["seed"]))
                                    torch.save(written[order].view(schedule.steps, schedule.batch_size, -1),
                                               Path(folder) / task["data"])
                                ready.append(index)
                    for index in ready:
                        jobs[pool.submit(_train_task, tasks[index])] = ("student", index)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    for index, task in enumerate(tasks):  # in the order of the recipes, each in seed order
        history, state = results[index]
        task["student"].load_state_dict(state)
        runs.histories.setdefault(task["objective"].name, []).append(history)
        runs.students.setdefault(task["objective"].name, []).append(task["student"].eval())
    return runs


@torch.no_grad()
def score_samples(model: nn.Module, teacher: TinyGPT, tokenizer, val_tokens: Tensor, count: int = 64, prompt: int = 8,
                  temperature: float = 1.0, seed: int = 0) -> dict:
    """Let `model` continue `count` real validation prompts; return how the teacher rates what it wrote.

    Returns the samples' text, the teacher's NLL of the written characters in bits/char (does the model write
    what the teacher would?), and the word-level distinct-1 and distinct-2 of the samples joined (how varied is
    it?). The same prompts and sampling seed serve every model, so the scores compare.
    """
    context = teacher.config.context
    generator = torch.Generator().manual_seed(30_000 + seed)
    prompts, _ = char_batches(val_tokens, prompt, count, generator)
    written = generate(model, prompts, context - prompt, temperature, generator=torch.Generator().manual_seed(seed))
    logits = teacher(written[:, :-1]).float()
    nll = F.cross_entropy(logits[:, prompt - 1:].reshape(-1, logits.shape[-1]), written[:, prompt:].reshape(-1))
    texts = [tokenizer.decode(row) for row in written]
    joined = "\n".join(texts)
    return {"texts": texts, "teacher_bits_per_char": nll.item() / math.log(2),
            "distinct_1": distinct_n(joined, 1), "distinct_2": distinct_n(joined, 2)}


# ----------------------------------------------------------------------------- the regime experiments/search_lm_kd.py chose

SEARCH_REPORT = config.PROJECT_ROOT / "experiments" / "results" / "lm_kd_search.json"
SCRATCH_LR = 6e-3  # the search's rule 1 (tests/test_lm_train.py ties these to the report)
DISTILLED_LR = 6e-3  # rule 2
DISTILLED = LMObjective("forward KL", hard_weight=0.0, soft_weight=1.0, beta=0.0, temperature=1.0)  # rule 2


def search_report(path: Path | str = SEARCH_REPORT) -> dict:
    """Return the report of experiments/search_lm_kd.py: every searched cell, the choices and their confirmation."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{config.relative_path(path)} is missing: run `.venv/bin/python "
                                "experiments/search_lm_kd.py --report` (or the whole search) to write it")
    return json.loads(path.read_text(encoding="utf-8"))


def contest() -> list[tuple[LMObjective, float]]:
    """Return notebook 08's students as (objective, learning rate): scratch, its controls and the distillation variants.

    Each variant changes one thing of the chosen forward-KL regime (or of scratch, for the hard-label students), so
    a difference between two of them has one cause.
    """
    hard = [LMObjective("scratch"), LMObjective("label smoothing", label_smoothing=0.1),
            LMObjective("sequence-level KD", seq_kd=True)]
    soft = [DISTILLED, replace(DISTILLED, name="reverse KL", beta=1.0), replace(DISTILLED, name="JSD β=0.5", beta=0.5),
            replace(DISTILLED, name="on-policy λ=0.5", lmbda=0.5), replace(DISTILLED, name="on-policy λ=1", lmbda=1.0),
            replace(DISTILLED, name="top-16", top_k=16), replace(DISTILLED, name="top-4", top_k=4),
            replace(DISTILLED, name="top-1", top_k=1)]
    return [(objective, SCRATCH_LR) for objective in hard] + [(objective, DISTILLED_LR) for objective in soft]
