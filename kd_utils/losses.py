"""Soft targets, the distillation losses, and the feature losses.

Convention used everywhere in this course (stated once, here and in notebook 03)::

    loss = (1 - alpha) * CE(student_logits, labels)
           + alpha * T**2 * KL(softmax(teacher_logits / T) || softmax(student_logits / T))

``alpha`` weights the *soft* (teacher) term: alpha = 0 is plain training on labels,
alpha = 1 learns from the teacher alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IGNORE_LABEL = -1  # a label of -1 marks an unlabelled image (the soft term still applies)


def _check_temperature(temperature: float) -> None:
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


def soft_targets(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Return the soft targets softmax(logits / T) along the last dimension."""
    _check_temperature(temperature)
    return F.softmax(logits / temperature, dim=-1)


def entropy(probabilities: Tensor) -> Tensor:
    """Return the entropy in nats of each row of a probability tensor."""
    return -(probabilities * probabilities.clamp_min(1e-30).log()).sum(dim=-1)


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 4.0, scale: bool = True) -> Tensor:
    """Return T² · KL(teacher ‖ student) between the softened distributions, mean over the batch.

    Both sides go through ``log_softmax`` (never ``p.log()`` of a probability that
    underflowed to 0), so the loss is finite even for logits of ±1e4.
    ``scale=False`` drops the T² factor, to show why Hinton et al. keep it: without it
    the gradient shrinks roughly as 1/T².
    """
    _check_temperature(temperature)
    _check_pair(student_logits, teacher_logits)
    student_log_probs = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_log_probs = F.log_softmax(teacher_logits / temperature, dim=-1)
    loss = F.kl_div(student_log_probs, teacher_log_probs, reduction="batchmean", log_target=True)
    return loss * temperature**2 if scale else loss


def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor,
    temperature: float = 4.0,
    alpha: float = 0.5,
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
        _check_temperature(temperature)
    teacher_log_probs = F.log_softmax(teacher_logits / temperature, dim=-1)
    return distillation_loss_from_log_probs(student_logits, labels, teacher_log_probs, temperature, alpha)


def distillation_loss_from_log_probs(
    student_logits: Tensor,
    labels: Tensor,
    teacher_log_probs: Tensor | None,
    temperature: float,
    alpha: float,
    all_labelled: bool = False,
) -> Tensor:
    """The arithmetic of `distillation_loss`, given the teacher's log-probabilities at T, without input checks.

    ``kd.train`` checks its inputs once and softens cached teacher logits once, then calls
    this on every step, so a distilled step costs little more than a plain one.
    ``teacher_log_probs=None`` (or α = 0) gives the hard term alone; ``all_labelled=True``
    promises that no label is -1, which saves the masking.
    """
    if teacher_log_probs is not None and alpha == 1.0:
        hard = None
    elif all_labelled:
        hard = F.cross_entropy(student_logits, labels)
    else:  # mean over the labelled images of the batch; 0 when none is labelled
        total = F.cross_entropy(student_logits, labels, ignore_index=IGNORE_LABEL, reduction="sum")
        hard = total / (labels != IGNORE_LABEL).sum().clamp(min=1)
    if teacher_log_probs is None or alpha == 0.0:
        return hard
    student_log_probs = F.log_softmax(student_logits / temperature, dim=-1)
    soft = F.kl_div(student_log_probs, teacher_log_probs, reduction="batchmean", log_target=True) * temperature**2
    return soft if hard is None else (1.0 - alpha) * hard + alpha * soft


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


def hard_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Return cross-entropy with the labels, ignoring labels of -1 (0 when none is labelled)."""
    _check_logits(logits)
    check_labels(labels, logits.shape[1], rows=len(logits))
    return distillation_loss_from_log_probs(logits, labels, None, 1.0, 0.0)


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


def parameter_count(module: nn.Module) -> int:
    """Return the number of trainable parameters of a module (a regressor, say)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


__all__ = [
    "IGNORE_LABEL",
    "AttentionTransferLoss",
    "CosineLoss",
    "HintLoss",
    "attention_map",
    "distillation_loss",
    "entropy",
    "feature_mse",
    "hard_loss",
    "kd_loss",
    "parameter_count",
    "soft_targets",
]
