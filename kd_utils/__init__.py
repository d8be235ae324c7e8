"""kd_utils: the helper package of the knowledge-distillation course (``import kd_utils as kd``)."""

from __future__ import annotations

import inspect

from .checkpoints import (
    CheckpointMismatchError,
    load_checkpoint,
    load_or_train_teacher,
    read_checkpoint,
    save_checkpoint,
    teacher_path,
)
from .cohort import SCRATCH, CohortResult, MLPCohort, Objective, train_cohort
from .config import (
    CHECKPOINT_DIR,
    DATA_DIR,
    PROJECT_ROOT,
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
from .evaluate import (
    accuracy,
    agreement,
    confusion_matrix,
    count_parameters,
    expected_calibration_error,
    fit_temperature,
    flops_per_image,
    latency,
    model_summary,
    most_confused_pairs,
    predict_logits,
    predictions,
    reliability,
    size_on_disk,
)
from .features import hook_count, tap
from .losses import (
    IGNORE_LABEL,
    AttentionTransferLoss,
    CosineLoss,
    HintLoss,
    attention_map,
    distillation_loss,
    entropy,
    feature_mse,
    hard_loss,
    kd_loss,
    parameter_count,
    soft_targets,
)
from .models import Ensemble, StudentCNN, StudentMLP, TeacherCNN, build_model, is_convolutional, stage_names
from .plots import (
    plot_bars_with_error,
    plot_class_grid,
    plot_confusion_matrix,
    plot_feature_maps,
    plot_heatmap,
    plot_history,
    plot_images,
    plot_reliability,
    plot_scatter,
    plot_soft_targets,
    use_course_style,
)
from .recipes import ENSEMBLE_SEEDS, ensemble_member_path, load_teacher_ensemble
from .students import STUDENT_RECIPES, load_or_train_student, save_student, student_path, train_student
from .train import TEACHER_SCHEDULE, FeatureTerm, History, cache_teacher_logits, train, train_fitnets, train_teacher


def show_source(obj) -> None:
    """Print the source code of a kd_utils function or class, so a notebook can show it without a copy."""
    print(inspect.getsource(obj))


__all__ = [name for name in dir() if not name.startswith("_") and name not in {"annotations", "inspect"}]
