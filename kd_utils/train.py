"""One short training loop, and the objectives it can minimise: plain training, logit distillation, feature distillation.

An objective is a small object called once per mini-batch as ``objective(model, images, labels, index)``;
it returns the student's logits, the total loss and a dict of named terms (as mdistiller's
``forward_train`` does), and `train` records every term per epoch in the History.
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
from .losses import IGNORE_LABEL, check_labels, check_teacher_logits, distillation_loss, distillation_terms, log_soft_targets
from .models import is_convolutional


@dataclass
class FeatureTerm:
    """A feature loss between a student stage and a teacher stage, added to the loss with `weight`.

    `loss` is a module called as ``loss(student_feature, teacher_feature)``: a
    ``kd.HintLoss`` (its regressor is trained with the student), ``kd.AttentionTransferLoss``
    or ``kd.CosineLoss``.
    """

    loss: nn.Module
    student_layer: str
    teacher_layer: str
    weight: float = 1.0

    @property
    def name(self) -> str:
        """Return the term's name in a History: the kind of loss and the layers, e.g. ``"hint block2"``."""
        kind = type(self.loss).__name__.removesuffix("Loss").removesuffix("Transfer").lower()
        layers = self.student_layer if self.student_layer == self.teacher_layer else f"{self.student_layer}←{self.teacher_layer}"
        return f"{kind} {layers}"


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


class PlainTraining:
    """Plain training: cross-entropy with the labels (a label of -1 adds nothing); the other objectives build on it."""

    teacher: nn.Module | None = None
    teacher_logits: Tensor | None = None
    feature_terms: Sequence[FeatureTerm] = ()
    temperature, alpha = 1.0, 0.0

    def setup(self, train_x: Tensor, train_y: Tensor, num_classes: int, device: torch.device, channels_last: bool) -> None:
        """Check the objective against the training set and move what it needs to `device`, once per run."""
        self.all_labelled = bool((train_y != IGNORE_LABEL).all())
        if self.teacher is not None:
            self.teacher.to(device).eval()
            if channels_last:
                self.teacher.to(memory_format=torch.channels_last)
        for module in self.modules():
            module.to(device)

    def modules(self) -> list[nn.Module]:
        """Return the modules trained along with the student (a hint's regressor)."""
        return [term.loss for term in self.feature_terms]

    def teacher_log_probs(self, images: Tensor, index: Tensor) -> Tensor | None:
        """Return the teacher's `log_soft_targets` for this batch (None: no teacher)."""
        return None

    def __call__(self, model: nn.Module, images: Tensor, labels: Tensor, index: Tensor) -> tuple[Tensor, Tensor, dict]:
        """Return the student's logits, the total loss and its named terms for one mini-batch."""
        logits = model(images)
        teacher_log_probs = self.teacher_log_probs(images, index)
        return logits, *distillation_terms(logits, teacher_log_probs, labels, self.temperature, self.alpha,
                                           self.all_labelled)


class LogitDistillation(PlainTraining):
    """Logit distillation (Hinton et al., 2015): (1 − α)·CE + α·T²·KL, from a live `teacher` or cached `teacher_logits`.

    Cached logits (``kd.predict_logits(teacher, train_x)``) are exact when the training images are
    not augmented: the teacher would give the same logits every epoch, so it costs one forward
    pass in total, and they are softened at T once per run.
    """

    def __init__(self, teacher: nn.Module | None = None, teacher_logits: Tensor | None = None,
                 temperature: float = 4.0, alpha: float = 0.5):
        if teacher is not None and teacher_logits is not None:
            raise ValueError("pass either a live teacher or cached teacher_logits, not both")
        if teacher is None and teacher_logits is None:
            raise ValueError("distillation needs a live teacher or cached teacher_logits (kd.predict_logits(teacher, x))")
        distillation_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), temperature, alpha)
        self.teacher, self.teacher_logits, self.temperature, self.alpha = teacher, teacher_logits, temperature, alpha

    def setup(self, train_x: Tensor, train_y: Tensor, num_classes: int, device: torch.device, channels_last: bool) -> None:
        super().setup(train_x, train_y, num_classes, device, channels_last)
        if self.teacher_logits is not None:
            check_teacher_logits(self.teacher_logits, len(train_x), num_classes)
            self.cached = log_soft_targets(self.teacher_logits.to(device).float(), self.temperature)

    def teacher_log_probs(self, images: Tensor, index: Tensor) -> Tensor:
        if self.teacher_logits is not None:
            return self.cached[index.to(self.cached.device)]
        with torch.no_grad():
            teacher_logits = self.teacher(images)
        return log_soft_targets(teacher_logits, self.temperature)


class FeatureDistillation(LogitDistillation):
    """Logit distillation plus Σ weight·loss(student stage, teacher stage) over `feature_terms`, from a live teacher.

    ``logit_loss=False`` trains on the feature terms alone (FitNets stage 1). The terms' own
    parameters (a hint's regressor) are trained with the student.
    """

    def __init__(self, teacher: nn.Module | None, feature_terms: Sequence[FeatureTerm], temperature: float = 4.0,
                 alpha: float = 0.5, logit_loss: bool = True):
        if teacher is None:
            raise ValueError("feature_terms need a live teacher (cached logits hold no features): pass teacher=")
        if not feature_terms:
            raise ValueError("FeatureDistillation needs feature_terms; for logits alone use kd.LogitDistillation")
        super().__init__(teacher=teacher, temperature=temperature, alpha=alpha)
        self.feature_terms, self.logit_loss = list(feature_terms), logit_loss
        names = [term.name for term in self.feature_terms]
        self.names = [name if names.count(name) == 1 else f"{name} #{i + 1}" for i, name in enumerate(names)]

    def __call__(self, model: nn.Module, images: Tensor, labels: Tensor, index: Tensor) -> tuple[Tensor, Tensor, dict]:
        with tap(model, [term.student_layer for term in self.feature_terms]) as student_features:
            logits = model(images)
        with torch.no_grad(), tap(self.teacher, [term.teacher_layer for term in self.feature_terms]) as teacher_features:
            teacher_logits = self.teacher(images)
        if self.logit_loss:
            teacher_log_probs = log_soft_targets(teacher_logits, self.temperature)
            loss, terms = distillation_terms(logits, teacher_log_probs, labels, self.temperature, self.alpha,
                                             self.all_labelled)
        else:  # zero, but with a graph: the layers past the guided one get zero gradients (and weight decay)
            loss, terms = logits.sum() * 0.0, {}
        for name, term in zip(self.names, self.feature_terms):
            terms[name] = term.loss(student_features[term.student_layer], teacher_features[term.teacher_layer])
            loss = loss + term.weight * terms[name]
        return logits, loss, terms


def objective_from(teacher: nn.Module | None = None, teacher_logits: Tensor | None = None, temperature: float = 4.0,
                   alpha: float = 0.5, feature_terms: Sequence[FeatureTerm] = (), logit_loss: bool = True) -> PlainTraining:
    """Return the objective that `train`'s keyword arguments describe: plain, logit or feature distillation."""
    if not logit_loss and not feature_terms:
        raise ValueError("logit_loss=False leaves nothing to train on: add feature_terms")
    if feature_terms:
        if teacher_logits is not None:
            raise ValueError("feature_terms need a live teacher (cached logits hold no features): pass teacher=")
        return FeatureDistillation(teacher, feature_terms, temperature, alpha, logit_loss)
    if teacher is not None or teacher_logits is not None:
        return LogitDistillation(teacher, teacher_logits, temperature, alpha)
    return PlainTraining()


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
    objective: Callable[[nn.Module, Tensor, Tensor, Tensor], tuple[Tensor, Tensor, dict]] | None = None,
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

    - `objective(model, images, labels, index)` returns (logits, total loss, {name: term}) for a batch:
      ``kd.PlainTraining()`` (cross-entropy with the labels),
      ``kd.LogitDistillation(teacher or teacher_logits, temperature, alpha)`` ((1 − α)·CE + α·T²·KL,
      α weights the soft term) or ``kd.FeatureDistillation(teacher, feature_terms, ...)``.
      Without one it is built from the keyword arguments `teacher`, `teacher_logits`,
      `temperature` (4), `alpha` (0.5), `feature_terms` and `logit_loss` (``kd_utils.train.objective_from``). A plain
      function works too; subclass ``kd.PlainTraining`` to add a teacher or trained modules.
    - `optimizer(parameters)` builds the optimizer (default AdamW with `lr` and `weight_decay`) and
      `schedule(optimizer, total_steps)` the learning-rate schedule, stepped after every batch
      (default one-cycle up to `lr`).
    - Labels of -1 mark unlabelled images: only the soft and feature terms learn from them.
    - `augment(images, generator=generator)` transforms each mini-batch (e.g. ``kd.random_shift``);
      it cannot be combined with cached teacher logits, which belong to the unchanged images.

    A seed fixes the data order and dropout, so the same seed gives the same numbers on
    the CPU. A loss that becomes NaN or infinite stops training with a clear message.
    """
    legacy = {"teacher": teacher, "teacher_logits": teacher_logits, "temperature": temperature, "alpha": alpha}
    if objective is None:
        objective = objective_from(teacher, teacher_logits, 4.0 if temperature is None else temperature,
                                   0.5 if alpha is None else alpha, feature_terms, logit_loss)
    elif [key for key, value in legacy.items() if value is not None] or feature_terms or not logit_loss:
        raise ValueError("pass the teacher, teacher_logits, temperature, alpha, feature_terms and logit_loss to the "
                         "objective, not to kd.train, when you give an objective")
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
    optimizer = optimizer(parameters) if optimizer else torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    total_steps = epochs * math.ceil(n / batch_size)
    scheduler = (schedule(optimizer, total_steps) if schedule
                 else torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps))
    history = History(name=name, device=str(device))
    bar = config.progress_bar(total_steps, name, progress)
    try:
        for epoch in range(1, epochs + 1):
            for module in trained:
                module.train()
            start = time.perf_counter()
            sums, correct, seen = 0.0, torch.zeros((), device=device), torch.zeros((), device=device)
            for step, index in enumerate(batch_indices(n, batch_size, True, generator)):
                images = train_x[index] if augment is None else augment(train_x[index], generator=generator)
                labels = train_y[index].to(device)
                logits, loss, terms = objective(model, _prepare(images, device, channels_last), labels, index)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"{name}: the loss became {loss.item()} at epoch {epoch}, step {step + 1}. Lower the learning "
                        f"rate (now {optimizer.param_groups[0]['lr']:.3g}) or a feature weight, and check the inputs for NaN."
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                with torch.no_grad():  # the total and every term, summed over the epoch's images
                    sums = sums + torch.stack([loss, *terms.values()]).detach() * len(index)
                    correct += (logits.argmax(1) == labels).sum()  # a label of -1 never matches
                    seen += (labels != IGNORE_LABEL).sum()
                bar.update(1)
                if step % 20 == 0 and progress:
                    bar.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}", refresh=False)
            seconds = time.perf_counter() - start
            loss_sum, *term_sums = sums.tolist()
            history.epochs.append({
                "epoch": epoch, "loss": loss_sum / n, "train_accuracy": correct.item() / max(seen.item(), 1),
                "val_accuracy": accuracy(model, val[0], val[1]) if val is not None else math.nan, "seconds": seconds,
            } | {f"loss:{name}": value / n for name, value in zip(terms, term_sums)})
    finally:
        bar.close()
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
    temperature: float = 4.0,
    alpha: float = 0.5,
    name: str = "FitNets",
    **kwargs,
) -> tuple[History, History]:
    """Train with the FitNets two-stage schedule (Romero et al., 2015); return both stages' histories.

    Stage 1 trains the student's layers up to the guided layer (and the hint regressor)
    on the hint loss alone: the later layers get no gradient. Stage 2 trains the whole
    student with the logit KD loss. The regressor is then no longer needed.
    """
    stage1 = train(student, train_x, train_y, objective=FeatureDistillation(teacher, [hint], logit_loss=False),
                   epochs=hint_epochs, name=f"{name} stage 1 (hint)", **kwargs)
    stage2 = train(student, train_x, train_y, objective=LogitDistillation(teacher, temperature=temperature, alpha=alpha),
                   epochs=epochs, name=f"{name} stage 2 (KD)", **kwargs)
    return stage1, stage2
