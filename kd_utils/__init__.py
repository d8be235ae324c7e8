"""kd_utils: the helper package of the knowledge-distillation course (``import kd_utils as kd``)."""

from __future__ import annotations

import inspect

from .checkpoints import CheckpointMismatchError, load_checkpoint, read_checkpoint, save_checkpoint
from .cohort import MLPCohort, train_cohort, train_methods
from .config import (
    DATA_DIR,
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
from .data import (
    CLASS_NAMES,
    NUM_CLASSES,
    DataNotFoundError,
    FashionMNISTData,
    batch_indices,
    denormalize,
    ensure_fashion_mnist,
    iterate_batches,
    labelled_subset,
    load_fashion_mnist,
    random_shift,
)
from .deploy import (
    TorchrunError,
    UnsupportedLayerError,
    deployed_logits,
    export_onnx,
    layer_times,
    logit_match,
    onnx_session,
    quantize_dynamic_int8,
    quantize_static_int8,
    run_torchrun,
    time_inference,
)
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
    SCRATCH,
    AttentionTransferLoss,
    CosineLoss,
    FeatureTerm,
    HintLoss,
    Objective,
    attention_map,
    decoupled_kd_terms,
    distillation_loss,
    dkd_loss,
    ensemble_logits,
    entropy,
    feature_mse,
    hard_loss,
    kd_loss,
    log_soft_targets,
    objective_loss,
    soft_loss,
    soft_targets,
)
from .models import Ensemble, StudentCNN, StudentMLP, TeacherCNN, build_model, is_convolutional, stage_names
from .plots import (
    plot_bars_with_error,
    plot_class_grid,
    plot_comparisons,
    plot_confusion_matrix,
    plot_feature_maps,
    plot_heatmap,
    plot_history,
    plot_images,
    plot_probability_bars,
    plot_reliability,
    plot_scatter,
    plot_soft_targets,
    use_course_style,
)
from .recipes import (
    ENSEMBLE_SEEDS,
    TEACHER_SCHEDULE,
    ensemble_member_path,
    load_or_train_teacher,
    load_teacher_ensemble,
    teacher_path,
    train_teacher,
)
from .stats import VERDICTS, Comparison, compare, mean_std, sample_std
from .students import STUDENT_RECIPES, load_or_train_student, save_student, train_student
from .train import History, train, train_fitnets


def show_source(obj) -> None:
    """Print the source code of a kd_utils function or class, so a notebook can show it without a copy."""
    print(inspect.getsource(obj))


__all__ = [
    "AttentionTransferLoss", "CLASS_NAMES", "CheckpointMismatchError", "CosineLoss",
    "DATA_DIR", "DataNotFoundError", "ENSEMBLE_SEEDS", "Ensemble", "FashionMNISTData", "FeatureTerm", "HintLoss",
    "History", "IGNORE_LABEL", "MLPCohort", "NUM_CLASSES", "Objective", "PROJECT_ROOT", "SCRATCH", "STUDENT_RECIPES",
    "StudentCNN", "StudentMLP", "TEACHER_SCHEDULE", "TeacherCNN", "accuracy", "agreement",
    "attention_map", "batch_indices", "build_model", "checkpoint_dir", "confusion_matrix",
    "count_parameters", "decoupled_kd_terms", "denormalize", "describe_run", "distillation_loss", "dkd_loss",
    "ensemble_logits", "ensemble_member_path",
    "ensure_fashion_mnist", "entropy", "expected_calibration_error", "feature_mse", "fit_temperature",
    "flops_per_image", "get_device", "hard_loss", "hook_count", "is_convolutional", "is_smoke", "iterate_batches",
    "kd_loss", "labelled_subset", "latency", "load_checkpoint", "load_fashion_mnist", "load_or_train_student",
    "load_or_train_teacher", "load_teacher_ensemble", "mode_name", "most_confused_pairs",
    "plot_bars_with_error", "plot_class_grid", "plot_confusion_matrix", "plot_feature_maps",
    "plot_heatmap", "plot_history", "plot_images", "plot_probability_bars", "plot_reliability", "plot_scatter",
    "plot_soft_targets",
    "predict_logits", "predict_logits_and_features", "predictions", "random_shift", "read_checkpoint", "relative_path",
    "reliability",
    "save_checkpoint", "save_student", "set_seed", "show_source", "size_on_disk", "soft_targets", "stage_names",
    "tap", "teacher_path", "train", "train_cohort", "train_fitnets", "train_student", "train_teacher",
    "use_course_style",
    # issue 13 (notebook 07): int8 quantization, ONNX export and run, timing, torchrun
    "TorchrunError", "UnsupportedLayerError", "deployed_logits", "export_onnx", "layer_times", "logit_match", "onnx_session",
    "quantize_dynamic_int8", "quantize_static_int8", "run_torchrun", "time_inference",
    # issue 12: one soft-loss primitive, objectives passed to kd.train, one atomic-write helper
    "objective_loss", "atomic_write", "log_soft_targets",
    "soft_loss",
    # issue 18: the one yardstick (paired per-seed differences, sample std, verdict words) and the paired cohort
    "Comparison", "plot_comparisons", "VERDICTS", "compare", "mean_std", "sample_std", "train_methods",
    # issue 20: the rule that picks the student to ship, on validation (notebooks 05 and 07)
    "recommend_student",
    # issue 20: each student and each teacher's logits computed once per course run (03 trains, 05–07 load)
    "stored_logits",
]
