"""kd_utils: the helper package of the knowledge-distillation course (``import kd_utils as kd``).

The public names are ``kd.<name>`` for each name in ``__all__``, listed below by the notebook that first
uses it, and the names inside a few public namespaces: ``kd.plots`` (every figure helper and the course's
colours), ``kd.stats`` (the yardstick's verdict words), ``kd.losses`` (the losses' building blocks),
``kd.deploy`` (notebook 07: int8, ONNX Runtime, torchrun) and ``kd.lm`` / ``kd.lm_train`` (notebook 08).
The other modules are the package's own plumbing: tests and scripts may import from them, notebooks do not.
"""

from __future__ import annotations

import inspect

from . import deploy, lm, lm_train, losses, plots, stats  # the public namespaces
from .checkpoints import CheckpointMismatchError, load_checkpoint, save_checkpoint
from .cohort import MLPCohort, train_cohort, train_methods
from .config import (
    PROJECT_ROOT,
    atomic_write,
    checkpoint_dir,
    describe_run,
    get_device,
    is_smoke,
    mode_name,
    relative_path,
    set_seed,
)
from .data import CLASS_NAMES, NUM_CLASSES, iterate_batches, labelled_subset, load_fashion_mnist
from .evaluate import (
    accuracy,
    agreement,
    confusion_matrix,
    count_parameters,
    expected_calibration_error,
    fit_temperature,
    flops_per_image,
    latency,
    most_confused_pairs,
    predict_logits,
    predict_logits_and_features,
    predictions,
    recommend_student,
    reliability,
    size_on_disk,
    stored_logits,
)
from .features import hook_count, tap
from .losses import (
    IGNORE_LABEL,
    AttentionTransferLoss,
    CosineLoss,
    FeatureTerm,
    HintLoss,
    Objective,
    attention_map,
    decoupled_kd_terms,
    distillation_loss,
    ensemble_logits,
    entropy,
    feature_mse,
    kd_loss,
    objective_loss,
    soft_targets,
)
from .models import StudentCNN, StudentMLP, TeacherCNN, is_convolutional, stage_names
from .recipes import (
    STUDENT_RECIPES,
    TEACHER_SCHEDULE,
    load_or_train_student,
    load_or_train_teacher,
    load_teacher_ensemble,
    save_student,
    teacher_path,
    train_teacher,
)
from .stats import VERDICTS, Comparison, compare, mean_std
from .train import History, train, train_fitnets


def show_source(obj) -> None:
    """Print the source code of a kd_utils function or class, so a notebook can show it without a copy."""
    print(inspect.getsource(obj))


__all__ = [
    # 00 index: the one yardstick every verdict comes from
    "compare",
    # 01 teacher training: data, models, the training loop, evaluation, checkpoints, run settings
    "CLASS_NAMES", "load_fashion_mnist", "iterate_batches", "set_seed", "get_device", "describe_run", "is_smoke",
    "mode_name", "relative_path", "TeacherCNN", "StudentCNN", "StudentMLP", "count_parameters", "flops_per_image",
    "train", "History", "TEACHER_SCHEDULE", "train_teacher", "load_or_train_teacher", "teacher_path",
    "save_checkpoint", "load_checkpoint", "CheckpointMismatchError", "STUDENT_RECIPES", "accuracy", "predict_logits",
    "predictions", "confusion_matrix", "most_confused_pairs", "soft_targets",
    # 02 temperature scaling: soft targets, calibration, the two losses
    "NUM_CLASSES", "entropy", "kd_loss", "distillation_loss", "reliability", "expected_calibration_error",
    "fit_temperature",
    # 03 distillation loss: the objective, its loss, the cohort of students, the yardstick's numbers
    "Objective", "objective_loss", "IGNORE_LABEL", "train_methods", "load_teacher_ensemble", "stored_logits",
    "mean_std", "VERDICTS", "save_student", "show_source", "PROJECT_ROOT",
    # 04 feature distillation: feature terms, taps, the MLP cohort
    "FeatureTerm", "HintLoss", "AttentionTransferLoss", "CosineLoss", "feature_mse", "attention_map", "tap",
    "hook_count", "stage_names", "predict_logits_and_features", "train_fitnets", "MLPCohort", "train_cohort",
    "labelled_subset", "Comparison", "checkpoint_dir",
    # 05 compression scorecard: cost, speed, the student to ship
    "load_or_train_student", "size_on_disk", "latency", "agreement", "is_convolutional", "recommend_student",
    "atomic_write",
    # 06 beyond the teacher: ensembles and decoupled KD
    "ensemble_logits", "decoupled_kd_terms",
]
