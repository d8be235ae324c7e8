"""One training loop for plain training, logit distillation and feature distillation."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from . import config
from .data import batch_indices
from .evaluate import accuracy, predict_logits
from .features import tap
from .losses import IGNORE_LABEL, check_labels, distillation_loss, distillation_loss_from_log_probs
from .models import is_convolutional


def _progress_bar(total: int, name: str, enabled: bool):
    """Return a tqdm bar: a widget in Jupyter, plain text when KD_PROGRESS=text (stored notebooks, CI)."""
    if os.environ.get("KD_PROGRESS") == "text":
        from tqdm import tqdm

        return tqdm(total=total, desc=name, disable=not enabled, file=sys.stdout, mininterval=10, ncols=100)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=name, disable=not enabled, mininterval=0.5)


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


@dataclass
class History:
    """Per-epoch records of one training run, and the line a reader can quote."""

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
    def final(self) -> dict[str, float]:
        return self.epochs[-1] if self.epochs else {}

    def summary(self) -> str:
        last = self.final
        val = f", val acc {last['val_accuracy']:.2%}" if not math.isnan(last.get("val_accuracy", math.nan)) else ""
        return (
            f"{self.name}: {len(self.epochs)} epoch{'s' if len(self.epochs) != 1 else ''}, loss {last['loss']:.3f}, "
            f"train acc {last['train_accuracy']:.2%}{val}, "
            f"{self.examples_per_second:,.0f} examples/s on {self.device}, {self.train_seconds:.1f} s"
        )


def _prepare(x: Tensor, device: torch.device, channels_last: bool) -> Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def _check_teacher_logits(teacher_logits: Tensor, n: int, num_classes: int) -> None:
    if teacher_logits.dim() != 2 or len(teacher_logits) != n or teacher_logits.shape[1] != num_classes:
        raise ValueError(
            f"cached teacher_logits have shape {tuple(teacher_logits.shape)} but the training data has {n} images "
            f"and the student {num_classes} classes (expected ({n}, {num_classes})); recompute them with "
            "kd.predict_logits(teacher, train_x) on exactly these training images, in this order"
        )


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
    teacher: nn.Module | None = None,
    teacher_logits: Tensor | None = None,
    temperature: float = 4.0,
    alpha: float = 0.5,
    feature_terms: Sequence[FeatureTerm] = (),
    logit_loss: bool = True,
    augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    name: str | None = None,
    verbose: bool = True,
) -> History:
    """Train `model` in place with AdamW and a one-cycle learning rate; return its History.

    - Plain training: no teacher; the loss is cross-entropy with the labels.
    - Distillation: pass a live `teacher` or `teacher_logits` cached once with
      ``kd.predict_logits(teacher, train_x)``; the loss is
      ``(1 − alpha)·CE + alpha·T²·KL`` (alpha weights the soft term). Cached logits are
      exact because the training images are not augmented: the teacher would give the
      same logits every epoch, so it costs one forward pass in total, not one per epoch.
    - Feature distillation: `feature_terms` add ``weight · loss(student_stage, teacher_stage)``
      (needs a live teacher); their own parameters (a hint regressor) are trained too.
      ``logit_loss=False`` trains on the feature terms alone (FitNets stage 1).
    - Labels of -1 mark unlabelled images: only the soft term learns from them.
    - `augment(images, generator=generator)` transforms each mini-batch (e.g. ``kd.random_shift``);
      it cannot be combined with cached teacher logits, which belong to the unchanged images.

    A seed fixes the data order and dropout, so the same seed gives the same numbers on
    the CPU. A loss that becomes NaN or infinite stops training with a clear message.
    """
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
    if teacher is not None and teacher_logits is not None:
        raise ValueError("pass either a live teacher or cached teacher_logits, not both")
    if augment is not None and teacher_logits is not None:
        raise ValueError("augment changes the images every epoch, so cached teacher_logits no longer match them: "
                         "pass the live teacher, or cache logits of augmented copies and train on those copies")
    if feature_terms and teacher is None:
        raise ValueError("feature_terms need a live teacher (cached logits hold no features)")
    if not logit_loss and not feature_terms:
        raise ValueError("logit_loss=False leaves nothing to train on: add feature_terms")
    distilling = teacher is not None or teacher_logits is not None
    if distilling:
        distillation_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), temperature, alpha)
    with torch.no_grad():
        was_training = model.training
        model.eval()
        num_classes = model(_prepare(train_x[:1], device, channels_last)).shape[1]
        model.train(was_training)
    check_labels(train_y, num_classes)  # once, here, so that no step pays for it
    all_labelled = bool((train_y != IGNORE_LABEL).all())
    teacher_log_probs = None  # the cached logits, softened at T once for the whole run
    if teacher_logits is not None:
        _check_teacher_logits(teacher_logits, n, num_classes)
        teacher_log_probs = F.log_softmax(teacher_logits.to(device).float() / temperature, dim=-1)
    if teacher is not None:
        teacher.to(device).eval()
        if channels_last:
            teacher.to(memory_format=torch.channels_last)
    for term in feature_terms:
        term.loss.to(device)

    generator = config.set_seed(seed)
    parameters = [p for p in model.parameters() if p.requires_grad]
    for term in feature_terms:
        parameters += [p for p in term.loss.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(n / batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)
    history = History(name=name, device=str(device))
    student_layers = [term.student_layer for term in feature_terms]
    teacher_layers = [term.teacher_layer for term in feature_terms]
    bar = _progress_bar(epochs * steps_per_epoch, name, progress)
    try:
        for epoch in range(1, epochs + 1):
            model.train()
            for term in feature_terms:
                term.loss.train()
            start = time.perf_counter()
            loss_sum, correct, seen = (torch.zeros((), device=device) for _ in range(3))
            for step, index in enumerate(batch_indices(n, batch_size, True, generator)):
                images = train_x[index] if augment is None else augment(train_x[index], generator=generator)
                images = _prepare(images, device, channels_last)
                labels = train_y[index].to(device)
                with tap(model, student_layers) if feature_terms else nullcontext({}) as student_features:
                    logits = model(images)
                if feature_terms:
                    with torch.no_grad(), tap(teacher, teacher_layers) as teacher_features:
                        batch_teacher_logits = teacher(images)
                elif teacher is not None:
                    with torch.no_grad():
                        batch_teacher_logits = teacher(images)
                if not logit_loss:
                    loss = logits.sum() * 0.0
                else:
                    if teacher_log_probs is not None:
                        batch_teacher_log_probs = teacher_log_probs[index.to(device)]
                    elif teacher is not None:
                        batch_teacher_log_probs = F.log_softmax(batch_teacher_logits / temperature, dim=-1)
                    else:
                        batch_teacher_log_probs = None
                    loss = distillation_loss_from_log_probs(logits, labels, batch_teacher_log_probs, temperature, alpha,
                                                            all_labelled)
                for term in feature_terms:
                    loss = loss + term.weight * term.loss(
                        student_features[term.student_layer], teacher_features[term.teacher_layer]
                    )
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"{name}: the loss became {loss.item()} at epoch {epoch}, step {step + 1}. "
                        f"Lower the learning rate (now {lr}) or a feature weight, and check the inputs for NaN."
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                with torch.no_grad():
                    loss_sum += loss.detach() * len(index)
                    correct += (logits.argmax(1) == labels).sum()  # a label of -1 never matches
                    seen += (labels != IGNORE_LABEL).sum()
                bar.update(1)
                if step % 20 == 0 and progress:
                    bar.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}", refresh=False)
            seconds = time.perf_counter() - start
            val_accuracy = accuracy(model, val[0], val[1]) if val is not None else math.nan
            history.epochs.append(
                {
                    "epoch": epoch,
                    "loss": loss_sum.item() / n,
                    "train_accuracy": correct.item() / max(seen.item(), 1),
                    "val_accuracy": val_accuracy,
                    "seconds": seconds,
                }
            )
    finally:
        bar.close()
    model.eval()
    history.examples_per_second = epochs * n / history.train_seconds
    if verbose:
        print(history.summary())
    return history


def cache_teacher_logits(teacher: nn.Module, images: Tensor, batch_size: int = 1024) -> Tensor:
    """Return the teacher's logits for `images`, computed once, to distil from without re-running the teacher."""
    return predict_logits(teacher, images, batch_size)


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
    stage1 = train(student, train_x, train_y, teacher=teacher, feature_terms=[hint], logit_loss=False,
                   epochs=hint_epochs, name=f"{name} stage 1 (hint)", **kwargs)
    stage2 = train(student, train_x, train_y, teacher=teacher, temperature=temperature, alpha=alpha, epochs=epochs,
                   name=f"{name} stage 2 (KD)", **kwargs)
    return stage1, stage2
