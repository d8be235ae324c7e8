"""`kd.train`: one short training loop for any model and any ``kd.Objective``, and the loop core it shares.

Each mini-batch goes through a step, ``step(model, images, labels, index)``, that returns the student's
logits, the total loss and a dict of named terms (as mdistiller's ``forward_train`` does); `ObjectiveStep`
is the step of a ``kd.Objective`` (its loss is ``kd.objective_loss`` plus any feature terms), and `train`
records every term per epoch in the History. `TrainingLoop` (optimiser, schedule, NaN guard, progress bar)
is shared with the cohort (``kd.train_cohort``) and ``scripts/distill_ddp.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from . import config
from .data import batch_indices
from .evaluate import accuracy
from .features import tap
from .losses import (
    ALPHA,
    IGNORE_LABEL,
    SCRATCH,
    TEMPERATURE,
    FeatureTerm,
    Objective,
    check_labels,
    check_teacher_logits,
    log_soft_targets,
    objective_loss,
)
from .models import is_convolutional


@dataclass
class History:
    """Per-epoch records of one training run (total loss and each term, accuracies, seconds), and a line to quote."""

    name: str
    device: str
    epochs: list[dict[str, float]] = field(default_factory=list)
    examples_per_second: float = float("nan")

    @property
    def train_seconds(self) -> float:
        return sum(record["seconds"] for record in self.epochs)

    def column(self, key: str) -> list[float]:
        """Return one metric across epochs (``"loss"``, ``"train_accuracy"``, ``"val_accuracy"``, ``"seconds"``)."""
        return [record[key] for record in self.epochs]

    @property
    def terms(self) -> dict[str, list[float]]:
        """Return each loss term across epochs by name (``"hard"``, ``"soft"``, ``"hint block2"``...)."""
        names = [key for key in self.final if key.startswith("loss:")]
        return {name.removeprefix("loss:"): self.column(name) for name in names}

    @property
    def final(self) -> dict[str, float]:
        return self.epochs[-1] if self.epochs else {}

    def summary(self) -> str:
        last = self.final
        val = f", val acc {last['val_accuracy']:.2%}" if not math.isnan(last.get("val_accuracy", math.nan)) else ""
        terms = self.terms if len(self.terms) > 1 else {}
        parts = f" ({', '.join(f'{name} {values[-1]:.3f}' for name, values in terms.items())})" if terms else ""
        return (
            f"{self.name}: {len(self.epochs)} epoch{'s' if len(self.epochs) != 1 else ''}, loss {last['loss']:.3f}{parts}, "
            f"train acc {last['train_accuracy']:.2%}{val}, "
            f"{self.examples_per_second:,.0f} examples/s on {self.device}, {self.train_seconds:.1f} s"
        )


def _prepare(x: Tensor, device: torch.device, channels_last: bool) -> Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


class ObjectiveStep:
    """``kd.train``'s mini-batch step for an `Objective`: the student's logits, the total loss and its named terms.

    The teacher is live (`teacher`, run on every batch: needed for feature terms and augmented images) or
    cached (`teacher_logits` = ``kd.predict_logits(teacher, train_x)``, exact when the images are not augmented,
    softened at T once per run). ``logit_loss=False`` trains on the feature terms alone (FitNets stage 1).
    Any callable ``step(model, images, labels, index) -> (logits, loss, terms)`` can replace it in ``kd.train``.
    """

    def __init__(self, objective: Objective = SCRATCH, teacher: nn.Module | None = None,
                 teacher_logits: Tensor | None = None, logit_loss: bool = True):
        if not isinstance(objective, Objective):
            raise TypeError(f"objective must be a kd.Objective, got {type(objective).__name__}")
        if teacher is not None and teacher_logits is not None:
            raise ValueError("pass either a live teacher or cached teacher_logits, not both")
        if objective.feature_weight > 0:
            raise ValueError("Objective.feature_weight is the cohort's hint on an MLP's hidden units from cached "
                             "teacher_features: train it with kd.train_cohort; kd.train takes Objective.feature_terms")
        if objective.feature_terms and teacher is None:
            raise ValueError("feature_terms need a live teacher (cached logits hold no features): pass teacher=")
        if objective.needs_teacher and teacher is None and teacher_logits is None:
            raise ValueError(f"the objective {objective.describe()!r} learns from a teacher: pass a live teacher= or "
                             "cached teacher_logits= (kd.predict_logits(teacher, train_x))")
        if not logit_loss and not objective.feature_terms:
            raise ValueError("logit_loss=False leaves nothing to train on: add feature_terms")
        self.objective, self.teacher, self.teacher_logits, self.logit_loss = objective, teacher, teacher_logits, logit_loss
        names = [term.name for term in objective.feature_terms]
        self.names = [name if names.count(name) == 1 else f"{name} #{i + 1}" for i, name in enumerate(names)]

    def setup(self, train_x: Tensor, train_y: Tensor, num_classes: int, device: torch.device, channels_last: bool) -> None:
        """Check the objective against the training set and move what it needs to `device`, once per run."""
        objective = self.objective
        self.all_labelled = objective.labels == "teacher" or bool((train_y != IGNORE_LABEL).all())
        if objective.decoupled and not self.all_labelled:
            raise ValueError("a decoupled-KD objective needs every training image's class, but train_y contains -1 "
                             "(unlabelled); give it labels='teacher' (the teacher's top-1 class) instead")
        if self.teacher is not None:
            self.teacher.to(device).eval()
            if channels_last:
                self.teacher.to(memory_format=torch.channels_last)
        if self.teacher_logits is not None:
            check_teacher_logits(self.teacher_logits, len(train_x), num_classes)
            logits = self.teacher_logits.to(device).float()
            self.cached = log_soft_targets(logits, objective.temperature) if objective.alpha > 0 else None
            self.cached_labels = logits.argmax(-1) if objective.labels == "teacher" else None
        for module in self.modules():
            module.to(device)

    def modules(self) -> list[nn.Module]:
        """Return the modules trained along with the student (a hint's regressor)."""
        return [term.loss for term in self.objective.feature_terms]

    def __call__(self, model: nn.Module, images: Tensor, labels: Tensor, index: Tensor) -> tuple[Tensor, Tensor, dict]:
        objective, terms_of = self.objective, self.objective.feature_terms
        with tap(model, [term.student_layer for term in terms_of]) as student_features:
            logits = model(images)
        teacher_log_probs = None
        if self.teacher is not None:
            with torch.no_grad(), tap(self.teacher, [term.teacher_layer for term in terms_of]) as teacher_features:
                teacher_logits = self.teacher(images)
            if objective.alpha > 0:
                teacher_log_probs = log_soft_targets(teacher_logits, objective.temperature)
            if objective.labels == "teacher":
                labels = teacher_logits.argmax(-1)
        elif self.teacher_logits is not None:
            index = index.to(logits.device)
            if objective.alpha > 0:
                teacher_log_probs = self.cached[index]
            if objective.labels == "teacher":
                labels = self.cached_labels[index]
        if self.logit_loss:
            loss, terms = objective_loss(logits, labels, objective, teacher_log_probs, self.all_labelled)
        else:  # zero, but with a graph: the layers past the guided one get zero gradients (and weight decay)
            loss, terms = logits.sum() * 0.0, {}
        for name, term in zip(self.names, terms_of):
            terms[name] = term.loss(student_features[term.student_layer], teacher_features[term.teacher_layer])
            loss = loss + term.weight * terms[name]
        return logits, loss, terms


class TrainingLoop:
    """The loop core both engines share (``kd.train`` and the cohort; ``scripts/distill_ddp.py`` too).

    AdamW with `lr` and `weight_decay` and a one-cycle schedule up to `lr` over `total_steps` (or the
    `optimizer(parameters)` and `schedule(optimizer, total_steps)` given), stepped after every batch;
    a loss that becomes NaN or infinite stops training with a message naming the fix; a progress bar.
    """

    def __init__(self, parameters, total_steps: int, *, lr: float, weight_decay: float, name: str, progress: bool,
                 optimizer: Callable | None = None, schedule: Callable | None = None):
        parameters = list(parameters)
        self.optimizer = optimizer(parameters) if optimizer else torch.optim.AdamW(parameters, lr=lr,
                                                                                  weight_decay=weight_decay)
        self.scheduler = (schedule(self.optimizer, total_steps) if schedule
                          else torch.optim.lr_scheduler.OneCycleLR(self.optimizer, max_lr=lr, total_steps=total_steps))
        self.name, self.progress = name, progress
        self.bar = config.progress_bar(total_steps, name, progress)

    def step(self, loss: Tensor, epoch: int, step: int) -> None:
        """One optimiser step on `loss` (the `step`-th batch of `epoch`, from 0), after the NaN guard."""
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"{self.name}: the loss became {loss.item()} at epoch {epoch}, step {step + 1}. Lower the learning rate "
                f"(now {self.optimizer.param_groups[0]['lr']:.3g}) or a feature weight, and check the inputs for NaN."
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.bar.update(1)
        if step % 20 == 0 and self.progress:
            self.bar.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}", refresh=False)

    def __enter__(self) -> TrainingLoop:
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()


def train(
    model: nn.Module,
    train_x: Tensor,
    train_y: Tensor,
    *,
    val: tuple[Tensor, Tensor] | None = None,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    objective: Objective | Callable[[nn.Module, Tensor, Tensor, Tensor], tuple[Tensor, Tensor, dict]] | None = None,
    optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer] | None = None,
    schedule: Callable[[torch.optim.Optimizer, int], torch.optim.lr_scheduler.LRScheduler] | None = None,
    teacher: nn.Module | None = None,
    teacher_logits: Tensor | None = None,
    temperature: float | None = None,
    alpha: float | None = None,
    feature_terms: Sequence[FeatureTerm] = (),
    logit_loss: bool = True,
    augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    name: str | None = None,
    verbose: bool = True,
) -> History:
    """Train `model` in place to minimise `objective`; return its History (the loss and each term per epoch).

    - `objective` is a ``kd.Objective`` (what the student learns from: labels, label smoothing, the teacher's
      soft targets at T with weight α, the teacher's hard labels, decoupled KD, feature terms), taught by the
      live `teacher` or its cached `teacher_logits`. Without one, it is built from the keyword arguments:
      `teacher` or `teacher_logits` with `temperature` and `alpha` (default ``kd.losses.TEMPERATURE`` and
      ``ALPHA``), `feature_terms`, and ``logit_loss=False`` for the feature terms alone.
      A callable ``step(model, images, labels, index) -> (logits, loss, terms)`` works too.
    - `optimizer(parameters)` builds the optimizer (default AdamW with `lr` and `weight_decay`) and
      `schedule(optimizer, total_steps)` the learning-rate schedule, stepped after every batch
      (default one-cycle up to `lr`).
    - Labels of -1 mark unlabelled images: only the soft and feature terms learn from them.
    - `augment(images, generator=generator)` transforms each mini-batch (e.g. ``kd.data.random_shift``);
      it cannot be combined with cached teacher logits, which belong to the unchanged images.

    A seed fixes the data order and dropout, so the same seed gives the same numbers on
    the CPU. A loss that becomes NaN or infinite stops training with a clear message.
    """
    settings = {"temperature": temperature, "alpha": alpha}
    if objective is None:
        distilled = teacher is not None or teacher_logits is not None
        objective = Objective(alpha=(ALPHA if alpha is None else alpha) if distilled else 0.0,
                              temperature=TEMPERATURE if temperature is None else temperature,
                              feature_terms=tuple(feature_terms))
    elif [key for key, value in settings.items() if value is not None] or feature_terms:
        raise ValueError("give temperature, alpha and feature_terms to the kd.Objective, not to kd.train, when you "
                         "pass an objective")
    if isinstance(objective, Objective):
        objective = ObjectiveStep(objective, teacher, teacher_logits, logit_loss)
    elif teacher is not None or teacher_logits is not None or not logit_loss:
        raise ValueError("a step function computes its own loss: give it the teacher, not kd.train")
    device = torch.device(device) if device is not None else config.get_device()
    channels_last = device.type == "cpu" and is_convolutional(model)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    name = name or type(model).__name__
    n = len(train_x)
    if n != len(train_y):
        raise ValueError(f"train_x has {n} images but train_y has {len(train_y)} labels")
    if n == 0:
        raise ValueError("train_x is empty: nothing to train on")
    if augment is not None and getattr(objective, "teacher_logits", None) is not None:
        raise ValueError("augment changes the images every epoch, so cached teacher_logits no longer match them: "
                         "pass the live teacher, or cache logits of augmented copies and train on those copies")
    with torch.no_grad():
        was_training = model.training
        model.eval()
        num_classes = model(_prepare(train_x[:1], device, channels_last)).shape[1]
        model.train(was_training)
    check_labels(train_y, num_classes)  # once, here, so that no step pays for it
    if hasattr(objective, "setup"):
        objective.setup(train_x, train_y, num_classes, device, channels_last)
    trained = [model, *(objective.modules() if hasattr(objective, "modules") else [])]

    generator = config.set_seed(seed)
    parameters = [p for module in trained for p in module.parameters() if p.requires_grad]
    history = History(name=name, device=str(device))
    with TrainingLoop(parameters, epochs * math.ceil(n / batch_size), lr=lr, weight_decay=weight_decay, name=name,
                      progress=progress, optimizer=optimizer, schedule=schedule) as loop:
        for epoch in range(1, epochs + 1):
            for module in trained:
                module.train()
            start = time.perf_counter()
            sums, correct, seen = 0.0, torch.zeros((), device=device), torch.zeros((), device=device)
            for step, index in enumerate(batch_indices(n, batch_size, True, generator)):
                images = train_x[index] if augment is None else augment(train_x[index], generator=generator)
                labels = train_y[index].to(device)
                logits, loss, terms = objective(model, _prepare(images, device, channels_last), labels, index)
                loop.step(loss, epoch, step)
                with torch.no_grad():  # the total and every term, summed over the epoch's images
                    sums = sums + torch.stack([loss, *terms.values()]).detach() * len(index)
                    correct += (logits.argmax(1) == labels).sum()  # a label of -1 never matches
                    seen += (labels != IGNORE_LABEL).sum()
            seconds = time.perf_counter() - start
            loss_sum, *term_sums = sums.tolist()
            history.epochs.append({
                "epoch": epoch, "loss": loss_sum / n, "train_accuracy": correct.item() / max(seen.item(), 1),
                "val_accuracy": accuracy(model, val[0], val[1]) if val is not None else math.nan, "seconds": seconds,
            } | {f"loss:{name}": value / n for name, value in zip(terms, term_sums)})
    model.eval()
    history.examples_per_second = epochs * n / history.train_seconds
    if verbose:
        print(history.summary())
    return history


def train_fitnets(
    student: nn.Module,
    teacher: nn.Module,
    train_x: Tensor,
    train_y: Tensor,
    hint: FeatureTerm,
    *,
    hint_epochs: int = 1,
    epochs: int = 5,
    temperature: float = TEMPERATURE,
    alpha: float = ALPHA,
    name: str = "FitNets",
    **kwargs,
) -> tuple[History, History]:
    """Train with the FitNets two-stage schedule (Romero et al., 2015); return both stages' histories.

    Stage 1 trains the student's layers up to the guided layer (and the hint regressor)
    on the hint loss alone: the later layers get no gradient. Stage 2 trains the whole
    student with the logit KD loss. The regressor is then no longer needed.
    """
    stage1 = train(student, train_x, train_y, objective=Objective(feature_terms=(hint,)), teacher=teacher,
                   logit_loss=False, epochs=hint_epochs, name=f"{name} stage 1 (hint)", **kwargs)
    stage2 = train(student, train_x, train_y, objective=Objective(alpha=alpha, temperature=temperature), teacher=teacher,
                   epochs=epochs, name=f"{name} stage 2 (KD)", **kwargs)
    return stage1, stage2
