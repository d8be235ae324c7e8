"""Where the course's teachers come from: notebook 01's teacher and the ensemble that notebook 03 distils from.

The teacher's recipe (architecture settings and schedule) and its load-or-train live here, so
``checkpoints`` only saves and loads, ``train`` only trains, and no module imports another in a cycle.

The search behind notebook 03 (``experiments/search_full_label_kd.py``, results in
``experiments/results/full_label_search.csv``) found that an MLP student learns more from the
averaged soft targets of a few independently trained teachers than from any single one, even a
stronger single one. The ensemble's members are notebook 01's teacher (seed 0, trained live by
any notebook that needs it) and teachers trained with exactly the same recipe from other seeds,
shipped as checkpoint files in ``experiments/teachers/`` by
``experiments/train_teacher_variant.py --epochs 5 --shift 0 --seed N`` (about 40 s each on a
2-core CPU).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import config
from .checkpoints import CheckpointMismatchError, load_checkpoint, save_checkpoint
from .data import load_fashion_mnist
from .evaluate import accuracy
from .models import Ensemble, build_model, is_convolutional
from .train import train

TEACHER_CONFIG: dict[str, Any] = {}  # TeacherCNN's defaults: width 24, hidden 256, dropout 0.3

# The teacher's recipe, in one place: notebook 01 and load_or_train_teacher both use it.
TEACHER_SCHEDULE = {"full": {"epochs": 5, "batch_size": 128, "lr": 3e-3}, "smoke": {"epochs": 1, "batch_size": 128, "lr": 3e-3}}


def teacher_recipe(seed: int = 0, epochs: int | None = None) -> dict[str, Any]:
    """Return the settings a teacher of the current mode is trained with: architecture, schedule and seed."""
    schedule = dict(TEACHER_SCHEDULE[config.mode_name()])
    if epochs is not None:
        schedule["epochs"] = epochs
    return {"architecture": "TeacherCNN", "config": dict(TEACHER_CONFIG), **schedule, "seed": seed}


def recipe_difference(metadata: dict[str, Any], recipe: dict[str, Any]) -> str:
    """Return how a checkpoint's recorded recipe differs from `recipe` ('' when it does not), naming each field."""
    saved = metadata.get("recipe")
    if saved is None:  # written before checkpoints recorded their recipe: compare what they did record
        saved = {key: metadata[key] for key in ("epochs", "seed") if key in metadata}
    differences = [f"{key}={saved[key]!r} where the recipe says {key}={value!r}"
                   for key, value in recipe.items() if key in saved and saved[key] != value]
    return "; ".join(differences)


def train_teacher(data, seed: int = 0, epochs: int | None = None, progress: bool = True):
    """Train the course's TeacherCNN on `data` with the schedule of the current mode; return (teacher, metadata)."""
    recipe = teacher_recipe(seed, epochs)
    schedule = {key: recipe[key] for key in TEACHER_SCHEDULE[config.mode_name()]}
    config.set_seed(seed)
    teacher = build_model("TeacherCNN", **TEACHER_CONFIG)
    history = train(
        teacher, data.train_x, data.train_y, val=(data.val_x, data.val_y), seed=seed, name="teacher",
        progress=progress, **schedule,
    )
    metadata = {
        "test_accuracy": accuracy(teacher, data.test_x, data.test_y),
        "val_accuracy": history.final["val_accuracy"],
        "epochs": schedule["epochs"],
        "train_seconds": history.train_seconds,
        "seed": seed,
        "mode": config.mode_name(),
        "recipe": recipe,
        "history": history.epochs,
    }
    return teacher.eval(), metadata



def teacher_path() -> Path:
    """Return where the teacher of the current mode (smoke or full) is kept."""
    return config.checkpoint_dir() / "teacher.pt"


def load_or_train_teacher(data=None, retrain: bool = False, path: Path | str | None = None, verbose: bool = True):
    """Return (teacher, metadata): loaded from its checkpoint, or trained and saved if there is none.

    Any notebook can call this with an empty ``checkpoints/`` folder. A checkpoint that
    does not fit the current TeacherCNN is not used: the teacher is retrained and the
    message says why. Smoke mode keeps its own small teacher in ``checkpoints/smoke``.
    """
    path = Path(path) if path is not None else teacher_path()
    if path.exists() and not retrain:
        try:
            teacher, metadata = load_checkpoint(path, build_model("TeacherCNN", **TEACHER_CONFIG))
            difference = recipe_difference(metadata, teacher_recipe())
            if difference:
                raise CheckpointMismatchError(f"{config.relative_path(path)} was trained with other settings than the "
                                              f"teacher's recipe: {difference}")
            if verbose:
                test_accuracy = metadata.get("test_accuracy", float("nan"))
                print(
                    f"Loaded the teacher from {config.relative_path(path)}: test accuracy {test_accuracy:.2%}, "
                    f"trained for {metadata.get('epochs')} epochs in {metadata.get('train_seconds', float('nan')):.0f} s."
                )
            return _fast_layout(teacher).eval(), metadata
        except CheckpointMismatchError as error:
            print(f"Retraining the teacher: {error}")
    if data is None:

        data = load_fashion_mnist()
    if verbose:
        print(f"No usable teacher checkpoint at {config.relative_path(path)}: training one now ({config.mode_name()} mode).")
    teacher, metadata = train_teacher(data)
    save_checkpoint(teacher, path, metadata)
    if verbose:
        print(f"Saved the teacher to {config.relative_path(path)}.")
    return teacher.eval(), metadata


def _fast_layout(model: nn.Module) -> nn.Module:
    """Put a conv model in channels-last memory layout on the CPU, where its convolutions run about 2× faster."""
    if next(model.parameters()).device.type == "cpu" and is_convolutional(model):
        model.to(memory_format=torch.channels_last)
    return model


SHIPPED_TEACHERS = config.PROJECT_ROOT / "experiments" / "teachers"
ENSEMBLE_SEEDS: tuple[int, ...] = (0, 1, 2)  # 0 is notebook 01's teacher


def ensemble_member_path(seed: int) -> Path:
    """Return the shipped checkpoint of the ensemble member trained from `seed` (seed 0 is notebook 01's teacher)."""
    return SHIPPED_TEACHERS / f"teacher_e5_shift0_seed{seed}.pt"


def load_teacher_ensemble(data=None, seeds: tuple[int, ...] = ENSEMBLE_SEEDS, verbose: bool = True):
    """Return (ensemble, metadata): notebook 01's teacher plus the shipped members of the other seeds.

    Metadata holds each member's test accuracy (as saved) and, when `data` is given, the
    ensemble's test accuracy on it.
    """
    members, accuracies = [], {}
    for seed in seeds:
        if seed == 0:
            member, metadata = load_or_train_teacher(data, verbose=False)
        else:
            path = ensemble_member_path(seed)
            if not path.is_file():
                raise FileNotFoundError(
                    f"the ensemble member of seed {seed} is missing ({config.relative_path(path)}); it ships with the "
                    f"course: restore it with git checkout, or retrain it with "
                    f"python experiments/train_teacher_variant.py --epochs 5 --shift 0 --seed {seed}"
                )
            member, metadata = load_checkpoint(path)
        members.append(member.eval())
        accuracies[seed] = metadata.get("test_accuracy")
    ensemble = Ensemble(members).eval()
    metadata = {"seeds": list(seeds), "member_test_accuracy": accuracies}
    if data is not None:
        metadata["test_accuracy"] = accuracy(ensemble, data.test_x, data.test_y)
    if verbose:
        print(f"Teacher ensemble of {len(members)} (seeds {', '.join(map(str, seeds))})"
              + (f": test accuracy {metadata['test_accuracy']:.2%}" if data is not None else ""))
    return ensemble, metadata
