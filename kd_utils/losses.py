"""Soft targets, the distillation losses, and the feature losses.

Convention used everywhere in this course (stated once, here and in notebook 03)::

    loss = (1 - alpha) * CE(student_logits, labels)
           + alpha * T**2 * KL(softmax(teacher_logits / T) || softmax(student_logits / T))

``alpha`` weights the *soft* (teacher) term: alpha = 0 is plain training on labels,
alpha = 1 learns from the teacher alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IGNORE_LABEL = -1  # a label of -1 marks an unlabelled image (the soft term still applies)
TEMPERATURE, ALPHA = 4.0, 0.5  # the default T and α of every distillation loss and of kd.train, written once


def check_temperature(temperature: float) -> None:
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool):
        raise TypeError(f"temperature must be a number, got {type(temperature).__name__}; try T = 1 to 20")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be > 0 (it divides the logits) and finite, got {temperature}; try T = 1 to 20")


def _check_logits(logits: Tensor, name: str = "logits") -> None:
    if not isinstance(logits, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (batch, classes), got {type(logits).__name__}")
    if logits.dim() != 2:
        raise ValueError(
            f"{name} must be 2-D (batch, classes), got shape {tuple(logits.shape)}; "
            "flatten extra dimensions or add a batch dimension with .unsqueeze(0)"
        )
    if logits.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(logits.shape)}): a loss over no images is undefined; "
                         "skip empty batches before calling the loss")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {logits.dtype}; use {name}.float()")


def _check_pair(student_logits: Tensor, teacher_logits: Tensor) -> None:
    _check_logits(student_logits, "student_logits")
    _check_logits(teacher_logits, "teacher_logits")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student_logits {tuple(student_logits.shape)} and teacher_logits {tuple(teacher_logits.shape)} "
            "must have the same shape: same batch (same images, same order) and same number of classes"
        )


def upcast_half(logits: Tensor) -> Tensor:
    """Return half-precision logits as float32 (others unchanged): T²·KL and a softmax over a vocabulary overflow or
    lose the small probabilities in float16 (max 65,504)."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def soft_targets(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Return the soft targets softmax(logits / T) along the last dimension."""
    check_temperature(temperature)
    return F.softmax(logits / temperature, dim=-1)


def log_soft_targets(logits: Tensor, temperature: float | Tensor) -> Tensor:
    """Return log softmax(logits / T): the soft targets as log-probabilities, the input of `soft_loss`, unchecked."""
    return F.log_softmax(logits / temperature, dim=-1)


def soft_loss(student_log_probs: Tensor, teacher_log_probs: Tensor, temperature: float | Tensor,
              scale: bool = True) -> Tensor:
    """Return T²·KL(teacher ‖ student) of two `log_soft_targets` at T, mean over the batch: the course's one soft term.

    ``kd_loss``, ``distillation_loss``, ``kd.train`` and the cohort all compute their soft term here,
    without input checks (the public losses check). The teacher's side comes in already softened, so
    cached logits are softened once per run. Inputs of shape (members, batch, classes) with one
    temperature per member (a tensor of shape (members,)) give one loss per member. ``scale=False``
    drops the T² factor.
    """
    kl = F.kl_div(student_log_probs, teacher_log_probs, reduction="none", log_target=True)
    kl = kl.sum(dim=(-2, -1)) / student_log_probs.shape[-2]
    return kl * temperature**2 if scale else kl


def entropy(probabilities: Tensor) -> Tensor:
    """Return the entropy in nats of each row of a probability tensor."""
    return -(probabilities * probabilities.clamp_min(1e-30).log()).sum(dim=-1)


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float = TEMPERATURE, scale: bool = True) -> Tensor:
    """Return T² · KL(teacher ‖ student) between the softened distributions, mean over the batch.

    Both sides go through ``log_softmax`` (never ``p.log()`` of a probability that
    underflowed to 0), so the loss is finite even for logits of ±1e4.
    ``scale=False`` drops the T² factor, to show why Hinton et al. keep it: without it
    the gradient shrinks roughly as 1/T².
    """
    check_temperature(temperature)
    _check_pair(student_logits, teacher_logits)
    student_logits, teacher_logits = upcast_half(student_logits), upcast_half(teacher_logits)  # float16 in, float32 out
    return soft_loss(log_soft_targets(student_logits, temperature), log_soft_targets(teacher_logits, temperature),
                     temperature, scale)


def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor,
    temperature: float = TEMPERATURE,
    alpha: float = ALPHA,
) -> Tensor:
    """Return (1 − α)·CE(student, labels) + α·T²·KL(teacher ‖ student); α weights the soft term.

    Labels equal to -1 mark unlabelled images: they add nothing to the hard term, and
    the hard term is averaged over the labelled images of the batch only.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (the weight of the soft term), got {alpha}")
    _check_pair(student_logits, teacher_logits)
    if alpha < 1.0:
        check_labels(labels, student_logits.shape[1], rows=len(student_logits))
    if alpha > 0.0:
        check_temperature(temperature)
    student_logits, teacher_logits = upcast_half(student_logits), upcast_half(teacher_logits)  # float16 in, float32 out
    teacher_log_probs = log_soft_targets(teacher_logits, temperature)
    return objective_loss(student_logits, labels, Objective(alpha=alpha, temperature=temperature), teacher_log_probs)[0]


def check_labels(labels: Tensor, num_classes: int, rows: int | None = None) -> None:
    """Raise a clear error unless `labels` is 1-D (with `rows` entries) of class indices or -1 (unlabelled)."""
    if not isinstance(labels, Tensor):
        raise TypeError(f"labels must be a torch.Tensor of class indices, got {type(labels).__name__}")
    if labels.dtype != torch.long:
        raise TypeError(f"labels must hold integer class indices as torch.long (int64), got {labels.dtype}; "
                        "convert them with labels.long()")
    if labels.dim() != 1 or (rows is not None and len(labels) != rows):
        raise ValueError(f"labels must be 1-D with one label per row of logits, got shape {tuple(labels.shape)}")
    valid = labels[labels != IGNORE_LABEL]
    if len(valid) and (valid.min() < 0 or valid.max() >= num_classes):
        raise ValueError(
            f"labels must be class indices in [0, {num_classes - 1}] (or -1 for unlabelled), "
            f"got values from {int(valid.min())} to {int(valid.max())}"
        )


def check_teacher_logits(teacher_logits: Tensor, n: int, num_classes: int) -> None:
    """Raise a ValueError naming the fix unless cached teacher logits have shape (n, num_classes)."""
    if teacher_logits.dim() != 2 or len(teacher_logits) != n or teacher_logits.shape[1] != num_classes:
        raise ValueError(
            f"cached teacher_logits have shape {tuple(teacher_logits.shape)} but the training data has {n} images "
            f"and the student {num_classes} classes (expected ({n}, {num_classes})); recompute them with "
            "kd.predict_logits(teacher, train_x) on exactly these training images, in this order"
        )


def hard_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Return cross-entropy with the labels, ignoring labels of -1 (0 when none is labelled)."""
    _check_logits(logits)
    check_labels(labels, logits.shape[1], rows=len(logits))
    return objective_loss(logits, labels, SCRATCH)[0]


# ----------------------------------------------------------------------------- the one objective and its loss

LABEL_SOURCES = ("true", "teacher")


@dataclass(frozen=True)
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

    def __post_init__(self) -> None:
        if not isinstance(self.weight, (int, float)) or not math.isfinite(self.weight) or self.weight < 0:
            raise ValueError(f"FeatureTerm.weight must be a finite number >= 0, got {self.weight!r}")

    @property
    def name(self) -> str:
        """Return the term's name in a History: the kind of loss and the layers, e.g. ``"hint block2"``."""
        kind = type(self.loss).__name__.removesuffix("Loss").removesuffix("Transfer").lower()
        layers = self.student_layer if self.student_layer == self.teacher_layer else f"{self.student_layer}←{self.teacher_layer}"
        return f"{kind} {layers}"


@dataclass(frozen=True)
class Objective:
    """What a student learns from; `objective_loss` computes it, and both engines (``kd.train``, the cohort) train it.

    Args:
        alpha: weight of the soft (teacher) term, in [0, 1]; the labels get 1 − α. 0 trains on labels alone.
        temperature: T of the soft term (> 0).
        smoothing: label smoothing ε of the hard term, in [0, 1).
        labels: ``"true"`` for the dataset's labels, ``"teacher"`` for the teacher's top-1 predictions.
        tckd_weight, nckd_weight: decoupled KD (Zhao et al., 2022; ``kd.decoupled_kd_terms``): when set, the soft
            term is ``tckd_weight·TCKD + nckd_weight·NCKD`` instead of KD (= TCKD + (1 − p^t_y)·NCKD), still with
            weight α; (1, 0) is TCKD alone, (0, 1) NCKD alone. Set both or neither.
        feature_terms: ``kd.FeatureTerm`` losses between named layers of the student and a live teacher
            (``kd.train`` only: the cohort's MLPs have no named stages).
        hard_weight: the weight of the hard term when it is not 1 − α (TRL's language-model losses weigh the two
            terms apart: ``hard_weight·CE + α·T²·soft``); not in the cohort, whose members all use 1 − α.
        jsd_beta: the soft term is the generalized JSD at this β instead of KL (TRL's ``beta``: 0 is forward
            KL(teacher ‖ student), 1 reverse KL(student ‖ teacher)); the worked example of a new logit loss.
        feature_weight: weight β of the cohort's hint on an MLP's hidden layer: the mean squared error between the
            hidden units, mapped by a learned linear regressor, and cached teacher features (``kd.train_cohort`` only).

    A new logit loss is one function in this module and one field here: see ``tests/test_objectives.py``.
    """

    alpha: float = 0.0
    temperature: float = 1.0
    smoothing: float = 0.0
    labels: str = "true"
    feature_weight: float = 0.0
    tckd_weight: float | None = None
    nckd_weight: float | None = None
    feature_terms: tuple[FeatureTerm, ...] = ()
    jsd_beta: float | None = None
    hard_weight: float | None = None

    def __post_init__(self) -> None:
        for name in ("alpha", "temperature", "smoothing", "feature_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"Objective.{name} must be a finite number, got {value!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"Objective.alpha must be in [0, 1] (the weight of the soft term), got {self.alpha}")
        check_temperature(self.temperature)
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"Objective.smoothing (label smoothing ε) must be in [0, 1), got {self.smoothing}")
        if self.feature_weight < 0:
            raise ValueError(f"Objective.feature_weight must be >= 0, got {self.feature_weight}")
        if self.labels not in LABEL_SOURCES:
            raise ValueError(f"Objective.labels must be one of {LABEL_SOURCES}, got {self.labels!r}")
        if (self.tckd_weight is None) != (self.nckd_weight is None):
            raise ValueError("Objective.tckd_weight and nckd_weight (decoupled KD) go together: set both or neither, "
                             f"got {self.tckd_weight!r} and {self.nckd_weight!r}")
        if self.decoupled:
            for name in ("tckd_weight", "nckd_weight"):
                value = getattr(self, name)
                if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                    raise ValueError(f"Objective.{name} must be a finite number >= 0, got {value!r}")
            if self.alpha == 0:
                raise ValueError("a decoupled-KD objective needs alpha > 0 (the weight of its soft term), got alpha = 0")
        if self.hard_weight is not None and (not isinstance(self.hard_weight, (int, float)) or isinstance(
                self.hard_weight, bool) or not math.isfinite(self.hard_weight) or self.hard_weight < 0):
            raise ValueError(f"Objective.hard_weight must be None (1 − α) or a finite number >= 0, got {self.hard_weight!r}")
        if self.jsd_beta is not None:
            if not isinstance(self.jsd_beta, (int, float)) or not 0.0 <= self.jsd_beta <= 1.0:
                raise ValueError(f"Objective.jsd_beta must be in [0, 1] (0: forward KL, 1: reverse KL), got {self.jsd_beta!r}")
            if self.decoupled:
                raise ValueError("Objective.jsd_beta and the DKD weights each replace the KL: choose one")
        object.__setattr__(self, "feature_terms", tuple(self.feature_terms))
        for term in self.feature_terms:
            if not isinstance(term, FeatureTerm):
                raise TypeError(f"Objective.feature_terms must hold kd.FeatureTerm, got {type(term).__name__}")

    @property
    def decoupled(self) -> bool:
        return self.tckd_weight is not None

    @property
    def needs_teacher(self) -> bool:
        return self.alpha > 0 or self.labels == "teacher" or bool(self.feature_terms)

    def describe(self) -> str:
        """Return a short name such as ``"KD T=2 α=0.5"`` or ``"LS ε=0.1"``."""
        parts = []
        if self.labels == "teacher":
            parts.append("teacher's hard labels")
        if self.alpha > 0 and self.decoupled:
            parts.append(f"DKD T={self.temperature:g} α={self.alpha:g} TCKD×{self.tckd_weight:g} NCKD×{self.nckd_weight:g}")
        elif self.alpha > 0 and self.jsd_beta is not None:
            parts.append(f"JSD β={self.jsd_beta:g} T={self.temperature:g} α={self.alpha:g}")
        elif self.alpha > 0:
            parts.append(f"KD T={self.temperature:g} α={self.alpha:g}")
        if self.smoothing > 0:
            parts.append(f"LS ε={self.smoothing:g}")
        if self.feature_weight > 0:
            parts.append(f"hint β={self.feature_weight:g}")
        parts += [f"{term.name} β={term.weight:g}" for term in self.feature_terms]
        return ", ".join(parts) or "scratch"


SCRATCH = Objective()


@dataclass(frozen=True)
class StackedObjectives:
    """Several objectives' weights as tensors of shape (members,), for logits of shape (members, batch, classes)."""

    alpha: Tensor
    temperature: Tensor
    smoothing: Tensor
    tckd_weight: Tensor
    nckd_weight: Tensor
    decoupled: Tensor  # bool: which members learn from DKD's two parts
    jsd_beta: Tensor  # the JSD's β of each member (0 where unused)
    jsd: Tensor  # bool: which members learn from the generalized JSD

    @classmethod
    def of(cls, objectives: Sequence[Objective], device: torch.device | str = "cpu",
           dtype: torch.dtype = torch.float32) -> StackedObjectives:
        weighted = [o.describe() for o in objectives if o.hard_weight is not None]
        if weighted:
            raise ValueError(f"the cohort weighs every member's labels by 1 − α, so it cannot train {weighted[0]!r} with "
                             "its own hard_weight: train it with kd.train")
        def column(values) -> Tensor:
            return torch.tensor(values, device=device, dtype=torch.bool if isinstance(values[0], bool) else dtype)
        return cls(column([o.alpha for o in objectives]), column([o.temperature for o in objectives]),
                   column([o.smoothing for o in objectives]),
                   column([o.tckd_weight if o.decoupled else 0.0 for o in objectives]),
                   column([o.nckd_weight if o.decoupled else 0.0 for o in objectives]),
                   column([o.decoupled for o in objectives]),
                   column([o.jsd_beta or 0.0 for o in objectives]), column([o.jsd_beta is not None for o in objectives]))


def objective_loss(
    student_logits: Tensor,
    labels: Tensor,
    objective: Objective | StackedObjectives,
    teacher_log_probs: Tensor | None = None,
    all_labelled: bool = False,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Return the total loss of `objective` and its named logit terms, ``{"hard": CE_ε, "soft": T²·KL or DKD}``.

    The course's one formula (Hinton et al., 2015; label smoothing and decoupled KD as options)::

        loss = (1 − α)·CE_ε(student, labels) + α·T²·KL(softmax(teacher / T) ‖ softmax(student / T))

    Logits are (..., batch, classes): the terms are means over the batch axis, one per leading index, so a
    cohort's member axis is just another axis (pass ``StackedObjectives``, one weight per member). The teacher
    comes as ``log_soft_targets(teacher_logits, T)``, softened once per run by the engines; None (or α = 0)
    gives the hard term alone, α = 1 the soft term alone. Labels of -1 add nothing to the hard term (mean over
    the labelled images; 0 when none is); ``all_labelled=True`` promises there are none and saves the masking.
    No input checks: the public losses and the engines check, once.
    """
    stacked = isinstance(objective, StackedObjectives)
    alpha, temperature, smoothing = objective.alpha, objective.temperature, objective.smoothing
    per_row = (lambda weight: weight[..., None]) if stacked else (lambda weight: weight)  # a weight per image
    soft = teacher_log_probs is not None and (bool((alpha > 0).any()) if stacked else alpha > 0)
    terms: dict[str, Tensor] = {}
    safe = labels if all_labelled else labels.clamp(min=0)  # a class index in every row; the unlabelled are masked
    hard_weight = None if stacked else objective.hard_weight
    if stacked or (hard_weight > 0 if hard_weight is not None else not soft or alpha < 1):
        log_probs = F.log_softmax(student_logits, dim=-1)
        labelled = None if all_labelled else labels != IGNORE_LABEL
        hard = -log_probs.gather(-1, safe.unsqueeze(-1)).squeeze(-1)  # the negative log-likelihood of each image
        if stacked or smoothing > 0:  # ε/K on every class: −ε·mean(log p) beside (1 − ε)·NLL
            hard = (1 - per_row(smoothing)) * hard - per_row(smoothing) * log_probs.mean(-1)
        terms["hard"] = (hard.mean(-1) if labelled is None
                         else (hard * labelled).sum(-1) / labelled.sum(-1).clamp(min=1))
    if not terms and not soft:
        raise ValueError("the objective leaves nothing to learn from: hard_weight is 0 and there is no soft term")
    if not soft:
        return (terms["hard"] if hard_weight is None else hard_weight * terms["hard"]), terms
    student_log_probs = log_soft_targets(student_logits, per_row(per_row(temperature)) if stacked else temperature)
    decoupled = objective.decoupled
    if stacked or not (decoupled or objective.jsd_beta is not None):
        kl = soft_loss(student_log_probs, teacher_log_probs, temperature, scale=False)
    if bool(decoupled.any()) if stacked else decoupled:  # TCKD and NCKD with their own weights, in place of KD
        tckd, nckd = decoupled_kd_from_log_probs(student_log_probs, teacher_log_probs, safe)
        split = (per_row(objective.tckd_weight) * tckd + per_row(objective.nckd_weight) * nckd).mean(-1)
        kl = torch.where(decoupled, split, kl) if stacked else split
    if bool(objective.jsd.any()) if stacked else objective.jsd_beta is not None:  # the generalized JSD, in place of KL
        jsd = generalized_jsd_from_log_probs(student_log_probs, teacher_log_probs, objective.jsd_beta)
        kl = torch.where(objective.jsd, jsd, kl) if stacked else jsd
    terms["soft"] = kl * temperature**2
    weighted_soft = alpha * temperature**2 * kl
    if "hard" not in terms:
        return weighted_soft, terms
    return (1 - alpha if hard_weight is None else hard_weight) * terms["hard"] + weighted_soft, terms


def generalized_jsd_from_log_probs(student_log_probs: Tensor, teacher_log_probs: Tensor, beta: float | Tensor) -> Tensor:
    """Return TRL's generalized JSD at β of two sides' log-probabilities, mean over the batch axis (-2), unchecked.

    JSD(β) = β·KL(p_t ‖ m) + (1 − β)·KL(p_s ‖ m) with the mixture m = β·p_t + (1 − β)·p_s; as TRL special-cases
    them, β = 0 is forward KL(teacher ‖ student) and β = 1 reverse KL(student ‖ teacher). `beta` may hold one β
    per leading index (a cohort's members). ``kd.lm.generalized_jsd`` is the same divergence per token.
    """
    if not isinstance(beta, Tensor) and beta in (0, 1):  # one β: compute only the divergence it names
        first, second = (student_log_probs, teacher_log_probs) if beta == 0 else (teacher_log_probs, student_log_probs)
        return soft_loss(first, second, 1.0, scale=False)
    beta = torch.as_tensor(beta, dtype=student_log_probs.dtype, device=student_log_probs.device)
    per_row = beta[..., None, None] if beta.dim() else beta
    mixture = torch.logsumexp(torch.stack([student_log_probs + torch.log1p(-per_row),
                                           teacher_log_probs + torch.log(per_row)]), dim=0)
    mixed = (beta * soft_loss(mixture, teacher_log_probs, 1.0, scale=False)
             + (1 - beta) * soft_loss(mixture, student_log_probs, 1.0, scale=False))
    if not per_row.dim():  # one β strictly between 0 and 1
        return mixed
    forward = soft_loss(student_log_probs, teacher_log_probs, 1.0, scale=False)  # KL(teacher ‖ student)
    reverse = soft_loss(teacher_log_probs, student_log_probs, 1.0, scale=False)  # KL(student ‖ teacher)
    return torch.where(beta == 0, forward, torch.where(beta == 1, reverse, mixed))


# ----------------------------------------------------------------------------- feature losses


def _check_feature_batch(student: Tensor, teacher: Tensor, loss: str) -> None:
    """Refuse features of different batch sizes before any arithmetic could broadcast them."""
    if student.dim() == 0 or teacher.dim() == 0 or student.shape[0] != teacher.shape[0]:
        raise ValueError(
            f"{loss}: student feature {tuple(student.shape)} and teacher feature {tuple(teacher.shape)} must have the "
            "same batch size: tap both models on the same images, in the same order"
        )
    if student.shape[0] == 0:
        raise ValueError(f"{loss}: the features are an empty batch; skip empty batches before calling the loss")


def _shape_error(student: Tensor, teacher: Tensor, adapter: str) -> ValueError:
    return ValueError(
        f"student feature {tuple(student.shape)} and teacher feature {tuple(teacher.shape)} have different "
        f"shapes; pass them through an adapter first: {adapter}"
    )


def feature_mse(student_feature: Tensor, teacher_feature: Tensor) -> Tensor:
    """Return the mean squared error between two features of the same shape."""
    if student_feature.shape != teacher_feature.shape:
        raise _shape_error(
            student_feature, teacher_feature, "kd.HintLoss(student_channels, teacher_channels) learns a regressor"
        )
    return F.mse_loss(student_feature, teacher_feature)


class HintLoss(nn.Module):
    """FitNets hint (Romero et al., 2015): a learned regressor maps the student's guided layer onto the teacher's hint.

    The regressor is a 1×1 convolution (``kernel_size=3`` for a 3×3 one) from the
    student's channels to the teacher's; where the spatial sizes differ, the regressed
    feature is resized to the teacher's with adaptive average pooling (or bilinear
    upsampling). It is trained with the student and dropped at inference.
    """

    def __init__(self, student_channels: int, teacher_channels: int, kernel_size: int = 1):
        super().__init__()
        self.regressor = nn.Sequential(
            nn.Conv2d(student_channels, teacher_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(teacher_channels),
        )

    def regress(self, student_feature: Tensor, size: tuple[int, int]) -> Tensor:
        """Return the student feature mapped to the teacher's channels and spatial size."""
        regressed = self.regressor(student_feature)
        if tuple(regressed.shape[-2:]) == tuple(size):
            return regressed
        if regressed.shape[-2] >= size[0]:
            return F.adaptive_avg_pool2d(regressed, size)
        return F.interpolate(regressed, size=size, mode="bilinear", align_corners=False)

    def forward(self, student_feature: Tensor, teacher_feature: Tensor) -> Tensor:
        if student_feature.dim() != 4 or teacher_feature.dim() != 4:
            raise ValueError("HintLoss needs 4-D conv features (batch, channels, height, width), got "
                             f"{tuple(student_feature.shape)} and {tuple(teacher_feature.shape)}")
        _check_feature_batch(student_feature, teacher_feature, "HintLoss")
        student_channels, teacher_channels = self.regressor[0].in_channels, self.regressor[0].out_channels
        if student_feature.shape[1] != student_channels or teacher_feature.shape[1] != teacher_channels:
            raise ValueError(
                f"HintLoss({student_channels}, {teacher_channels}) got a student feature with {student_feature.shape[1]} "
                f"channels and a teacher feature with {teacher_feature.shape[1]}; build it as "
                f"kd.HintLoss({student_feature.shape[1]}, {teacher_feature.shape[1]})"
            )
        return F.mse_loss(self.regress(student_feature, teacher_feature.shape[-2:]), teacher_feature)


def attention_map(feature: Tensor, size: tuple[int, int] | None = None) -> Tensor:
    """Return the L2-normalised spatial attention map (channel mean of squared activations), flattened."""
    if feature.dim() != 4:
        raise ValueError(f"attention maps need 4-D conv features, got shape {tuple(feature.shape)}")
    attention = feature.pow(2).mean(dim=1, keepdim=True)
    if size is not None and tuple(attention.shape[-2:]) != tuple(size):
        attention = F.adaptive_avg_pool2d(attention, size)
    return F.normalize(attention.flatten(1), dim=1)


class AttentionTransferLoss(nn.Module):
    """Attention transfer (Zagoruyko & Komodakis, 2017): L2 between normalised attention maps.

    It has no parameters: maps of different spatial size are matched by adaptive pooling
    to the smaller one, and channel counts may differ freely.
    """

    def forward(self, student_feature: Tensor, teacher_feature: Tensor) -> Tensor:
        _check_feature_batch(student_feature, teacher_feature, "AttentionTransferLoss")
        size = tuple(min(a, b) for a, b in zip(student_feature.shape[-2:], teacher_feature.shape[-2:]))
        student_map = attention_map(student_feature, size)
        teacher_map = attention_map(teacher_feature, size)
        return (student_map - teacher_map).pow(2).sum(dim=1).mean()


class CosineLoss(nn.Module):
    """1 − cosine similarity of pooled hidden vectors, with a learned linear projection when widths differ."""

    def __init__(self, student_width: int, teacher_width: int):
        super().__init__()
        self.projection = nn.Identity() if student_width == teacher_width else nn.Linear(student_width, teacher_width)

    @staticmethod
    def pool(feature: Tensor) -> Tensor:
        """Return a (batch, width) vector: global average pooling for conv features, as is for vectors."""
        return feature.mean(dim=(-2, -1)) if feature.dim() == 4 else feature.flatten(1)

    def forward(self, student_feature: Tensor, teacher_feature: Tensor) -> Tensor:
        _check_feature_batch(student_feature, teacher_feature, "CosineLoss")
        student_width = self.pool(student_feature).shape[1]
        if isinstance(self.projection, nn.Linear) and student_width != self.projection.in_features:
            raise ValueError(
                f"CosineLoss(student_width={self.projection.in_features}, teacher_width={self.projection.out_features}) "
                f"got a student feature {student_width} wide; build it as "
                f"kd.CosineLoss({student_width}, {self.pool(teacher_feature).shape[1]})"
            )
        student_vector = self.projection(self.pool(student_feature))
        teacher_vector = self.pool(teacher_feature)
        if student_vector.shape != teacher_vector.shape:
            raise _shape_error(
                student_vector, teacher_vector,
                f"kd.CosineLoss(student_width={self.pool(student_feature).shape[1]}, "
                f"teacher_width={teacher_vector.shape[1]}) adds the projection",
            )
        return (1.0 - F.cosine_similarity(student_vector, teacher_vector, dim=1)).mean()




# ----------------------------------------------------------------------------- ensembles and decoupled KD (notebook 06)


def ensemble_logits(member_logits: list[Tensor] | tuple[Tensor, ...]) -> Tensor:
    """Return an ensemble's logits, the log of its members' mean probabilities, from each member's logits.

    The same as ``kd.models.Ensemble(members)(x)`` given every member's logits on ``x``, so members whose
    logits are already computed need not run again (Hinton et al., 2015, average probabilities).
    """
    if not isinstance(member_logits, (list, tuple)) or len(member_logits) == 0:
        raise ValueError("member_logits must be a non-empty list of (batch, classes) tensors, one per member, "
                         f"got {type(member_logits).__name__}")
    for index, logits in enumerate(member_logits):
        _check_logits(logits, f"member_logits[{index}]")
        if logits.shape != member_logits[0].shape:
            raise ValueError(f"member_logits[{index}] has shape {tuple(logits.shape)} but member_logits[0] has "
                             f"{tuple(member_logits[0].shape)}: every member must score the same images, in the same order")
    return mean_probability_logits(member_logits)


def mean_probability_logits(member_logits: Iterable[Tensor]) -> Tensor:
    """The arithmetic of `ensemble_logits` (and of ``kd.models.Ensemble``), unchecked: log of the mean softmax, in log space.

    An iterator works: ``kd.models.Ensemble`` passes its members' outputs one by one, each softened as it comes.
    """
    log_probs = torch.stack([F.log_softmax(logits, dim=-1) for logits in member_logits])
    return log_probs.logsumexp(dim=0) - math.log(len(log_probs))


def decoupled_kd_from_log_probs(student_log_probs: Tensor, teacher_log_probs: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """The arithmetic of `decoupled_kd_terms` without T² or input checks: per-image (TCKD, NCKD) KL divergences.

    Takes both sides' log-probabilities at the temperature and the target class of each image; any
    leading dimensions work (a cohort's (members, batch, classes)). Every log-probability stays in log
    space: log(1 − p_target) is the logsumexp of the non-target log-probabilities, never log(1 − p),
    which would be log(0) once p_target rounds to 1.
    """
    classes = student_log_probs.shape[-1]
    target = labels.unsqueeze(-1)
    # the K − 1 non-target classes of each row, in order: j for j < target, j + 1 from the target on
    others = torch.arange(classes - 1, device=labels.device).expand(*labels.shape, classes - 1)
    others = others + (others >= target).long()

    def split(log_probs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        log_target = log_probs.gather(-1, target).squeeze(-1)
        non_target = log_probs.gather(-1, others)
        log_rest = non_target.logsumexp(dim=-1)  # log(1 − p_target)
        return log_target, log_rest, non_target - log_rest.unsqueeze(-1)  # renormalised over the non-target classes

    student_target, student_rest, student_others = split(student_log_probs)
    teacher_target, teacher_rest, teacher_others = split(teacher_log_probs)
    tckd = (teacher_target.exp() * (teacher_target - student_target)
            + teacher_rest.exp() * (teacher_rest - student_rest))
    nckd = (teacher_others.exp() * (teacher_others - student_others)).sum(dim=-1)
    return tckd, nckd


def _check_decoupled_inputs(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, temperature: float) -> None:
    check_temperature(temperature)
    _check_pair(student_logits, teacher_logits)
    if student_logits.shape[1] < 2:
        raise ValueError(f"decoupled KD needs at least 2 classes (a target and a non-target one), got "
                         f"{student_logits.shape[1]}")
    check_labels(labels, student_logits.shape[1], rows=len(student_logits))
    if (labels == IGNORE_LABEL).any():
        raise ValueError(f"decoupled KD needs every image's target class, but {int((labels == IGNORE_LABEL).sum())} "
                         "labels are -1 (unlabelled); use the teacher's top-1 class for those images, "
                         "e.g. labels = teacher_logits.argmax(1)")


def decoupled_kd_terms(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor,
    temperature: float = TEMPERATURE,
    reduction: str = "mean",
) -> tuple[Tensor, Tensor]:
    """Return (TCKD, NCKD), the two parts of the KD loss (Zhao et al., CVPR 2022), each at T and scaled by T².

    With p = softmax(z / T) of the teacher (t) or the student (s) and y the label of the image:

    - TCKD = T² · KL([p^t_y, 1 − p^t_y] ‖ [p^s_y, 1 − p^s_y]): how sure each is of the target class;
    - NCKD = T² · KL(p̂^t ‖ p̂^s), where p̂_j = p_j / (1 − p_y) for the K − 1 classes j ≠ y: how the
      rest of the probability is shared among the wrong classes.

    Per image, ``kd_loss = TCKD + (1 − p^t_y) · NCKD`` exactly (the paper's eq. 3, with the same T² on
    both sides): KD weights NCKD by the teacher's non-target mass, small where the teacher is sure.
    ``reduction="mean"`` averages over the batch, as ``kd_loss`` does; ``"none"`` returns one value per
    image. The identity holds for batch means only with the weight inside the mean:
    ``kd_loss = mean(TCKD_i + (1 − p^t_{y,i}) · NCKD_i)``, not ``mean(TCKD) + mean(1 − p^t_y) · mean(NCKD)``.
    """
    _check_decoupled_inputs(student_logits, teacher_logits, labels, temperature)
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    tckd, nckd = decoupled_kd_from_log_probs(log_soft_targets(student_logits, temperature),
                                             log_soft_targets(teacher_logits, temperature), labels)
    tckd, nckd = tckd * temperature**2, nckd * temperature**2
    return (tckd.mean(), nckd.mean()) if reduction == "mean" else (tckd, nckd)


def dkd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor,
    alpha: float = 1.0,
    beta: float = 8.0,
    temperature: float = TEMPERATURE,
) -> Tensor:
    """Return the decoupled KD loss α·TCKD + β·NCKD (Zhao et al., CVPR 2022), mean over the batch.

    As in the paper (and mdistiller's ``dkd_loss``), this is the distillation term only: train with
    ``CE + dkd_loss``. Its defaults are the paper's CIFAR-100 setting (α = 1, β = 8, T = 4). α = 1,
    β = 1 − p^t_y per image would give back the KD loss; β > 1 frees NCKD from that weight. Note that
    this α weights TCKD: it is not the course's α, the share of the soft term in ``distillation_loss``.
    """
    for name, weight in (("alpha", alpha), ("beta", beta)):
        if not isinstance(weight, (int, float)) or isinstance(weight, bool):
            raise TypeError(f"{name} (the weight of {'TCKD' if name == 'alpha' else 'NCKD'}) must be a number, "
                            f"got {type(weight).__name__}")
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"{name} (the weight of {'TCKD' if name == 'alpha' else 'NCKD'}) must be finite and >= 0, "
                             f"got {weight}; the paper uses alpha = 1 and beta = 1 to 10")
    tckd, nckd = decoupled_kd_terms(student_logits, teacher_logits, labels, temperature)
    return alpha * tckd + beta * nckd


__all__ = [
    "AttentionTransferLoss",
    "CosineLoss",
    "HintLoss",
    "IGNORE_LABEL",
    "attention_map",
    "decoupled_kd_terms",
    "distillation_loss",
    "dkd_loss",
    "ensemble_logits",
    "entropy",
    "feature_mse",
    "hard_loss",
    "kd_loss",
    "log_soft_targets",
    "soft_loss",
    "soft_targets",
]
