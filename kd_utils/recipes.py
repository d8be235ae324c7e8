"""The course's recipes, in one place: the teachers (notebook 01's and the ensemble 03 distils from) and the students.

A recipe says how a model is trained: the model, its schedule, its teacher and, for a student, its
``kd.Objective``. The teacher's recipe and its load-or-train live here, and so do the typed student recipes
(``kd.STUDENT_RECIPES``) that notebooks 03 and 04 choose on validation and 05–07 load or retrain.
``checkpoints`` only saves and loads, ``train`` and ``cohort`` only train, and no module imports another in a
cycle.

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

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import config
from .checkpoints import CheckpointMismatchError, load_checkpoint, save_checkpoint
from .cohort import MLPCohort, train_cohort
from .data import load_fashion_mnist
from .evaluate import accuracy, stored_logits
from .losses import SCRATCH, AttentionTransferLoss, CosineLoss, FeatureTerm, HintLoss, Objective
from .models import Ensemble, build_model, is_convolutional
from .train import train, train_fitnets

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


# ----------------------------------------------------------------------------- the students (notebooks 03–07)

SMOKE_EPOCHS = 1  # every student recipe trains this many epochs in smoke mode
FEATURE_LOSSES = {"hint": HintLoss, "attention": AttentionTransferLoss, "cosine": CosineLoss}
TEACHERS = ("course", "ensemble")  # notebook 01's teacher, or the ensemble of ENSEMBLE_SEEDS


@dataclass(frozen=True)
class FeatureRecipe:
    """A feature term of a CNN student: the kind of loss, its weight β, the stages it joins, FitNets' hint stage."""

    kind: str  # "hint", "attention" or "cosine"
    weight: float
    layer: str = "block2"  # the same stage name in the student and the teacher
    student_channels: int = 16
    teacher_channels: int = 48
    hint_epochs: int = 0  # > 0: FitNets' two stages, the hint alone for this many epochs, then logit KD

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_LOSSES:
            raise ValueError(f"FeatureRecipe.kind must be one of {', '.join(FEATURE_LOSSES)}, got {self.kind!r}")

    def term(self) -> FeatureTerm:
        """Return a fresh feature term (a hint's regressor is trained with its student, so each student gets its own)."""
        if self.kind == "attention":
            loss = AttentionTransferLoss()
        else:
            loss = FEATURE_LOSSES[self.kind](self.student_channels, self.teacher_channels)
        return FeatureTerm(loss, self.layer, self.layer, self.weight)


@dataclass(frozen=True)
class StudentRecipe:
    """How a scorecard student is trained: its model, schedule, teacher and objective (a typed record, read by field)."""

    architecture: str  # "StudentMLP" or "StudentCNN"
    width: int  # hidden units of an MLP, channel width of a CNN
    epochs: int
    objective: Objective = SCRATCH
    teacher: str = "course"  # the teacher of its soft targets: "course" (notebook 01's) or "ensemble"
    batch_size: int = 128
    train_images: int | None = None  # a seeded subset of the training images (None: all of them)
    subset_seed: int = 0
    feature: FeatureRecipe | None = None

    def __post_init__(self) -> None:
        if self.architecture not in ("StudentMLP", "StudentCNN"):
            raise ValueError(f"StudentRecipe.architecture must be 'StudentMLP' or 'StudentCNN', got {self.architecture!r}")
        if self.teacher not in TEACHERS:
            raise ValueError(f"StudentRecipe.teacher must be one of {TEACHERS}, got {self.teacher!r}")
        for name in ("width", "epochs", "batch_size", "train_images"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"StudentRecipe.{name} must be a whole number >= 1, got {value!r}")
        if not isinstance(self.objective, Objective):
            raise TypeError(f"StudentRecipe.objective must be a kd.Objective, got {type(self.objective).__name__}")
        if self.feature is not None and self.architecture != "StudentCNN":
            raise ValueError("StudentRecipe.feature joins named conv stages: it needs architecture='StudentCNN'")

    @property
    def mode_epochs(self) -> int:
        """The epochs of the current mode: the recipe's in a full run, SMOKE_EPOCHS in smoke mode."""
        return SMOKE_EPOCHS if config.is_smoke() else self.epochs

    @property
    def distilled(self) -> bool:
        """Whether the student learns from a teacher (soft targets, its labels or its features)."""
        return self.objective.needs_teacher or self.feature is not None

    def model(self) -> nn.Module:
        """Return a new, untrained student of this recipe (seed it first with ``kd.set_seed``)."""
        return build_model(self.architecture, **{"hidden" if self.architecture == "StudentMLP" else "width": self.width})

    def as_dict(self) -> dict[str, Any]:
        """Return the recipe as plain JSON types, as checkpoints record it."""
        return json.loads(json.dumps(asdict(self)))


MLP_REGIME = StudentRecipe("StudentMLP", 128, epochs=30, teacher="ensemble")
# Notebook 03's full-label regime and its T and α, chosen on the validation split by
# experiments/search_full_label_kd.py (experiments/results/full_label_search.csv); notebook 03 and
# tests/test_recipes.py assert that this is what the search chose. Every distilled student uses this T and α.
CHOSEN_KD = Objective(alpha=0.5, temperature=2.0)
# Notebook 04's students: a seeded subset of 8,000 training images, 3 epochs, notebook 03's T and α; each feature
# weight is the one notebook 04 chose on validation (tests/test_recipes.py ties them to its committed output).
_CNN = StudentRecipe("StudentCNN", 8, epochs=1)
_FEATURE_BASE = replace(_CNN, epochs=3, train_images=8_000, objective=CHOSEN_KD)
STUDENT_RECIPES: dict[str, StudentRecipe] = {
    "mlp_scratch": MLP_REGIME,
    "mlp_kd": replace(MLP_REGIME, objective=CHOSEN_KD),
    "mlp_ls": replace(MLP_REGIME, objective=Objective(smoothing=0.1)),
    "cnn_scratch": _CNN,
    "cnn_kd": replace(_CNN, objective=CHOSEN_KD),
    "cnn_hint_kd": replace(_FEATURE_BASE, feature=FeatureRecipe("hint", 1.0)),
    "cnn_at_kd": replace(_FEATURE_BASE, feature=FeatureRecipe("attention", 2.0)),
    "cnn_cosine_kd": replace(_FEATURE_BASE, feature=FeatureRecipe("cosine", 1.0)),
    "cnn_fitnets": replace(_FEATURE_BASE, epochs=2, feature=FeatureRecipe("hint", 1.0, hint_epochs=1)),
}


def _recipe(name: str) -> StudentRecipe:
    if name not in STUDENT_RECIPES:
        raise KeyError(f"no student called {name!r}; known: {', '.join(STUDENT_RECIPES)}")
    return STUDENT_RECIPES[name]


def student_path(name: str) -> Path:
    """Return where the student called `name` is kept in the current mode."""
    return config.checkpoint_dir() / f"student_{name}.pt"


def save_student(name: str, model: nn.Module, metadata: dict[str, Any]) -> Path:
    """Save a trained student under its scorecard name (atomically)."""
    return save_checkpoint(model, student_path(name), metadata)


def train_student(name: str, data, teacher: nn.Module | None = None, seed: int = 0, progress: bool = False):
    """Train the student `name` with its recipe; return (model, metadata).

    MLP students train as a one-member ``kd.MLPCohort``, exactly as in notebook 03; CNN students with
    ``kd.train`` (FitNets' two stages when the feature recipe has ``hint_epochs``), as in notebook 04.
    """
    recipe = _recipe(name)
    epochs = recipe.mode_epochs
    train_x, train_y = data.train_x, data.train_y
    if recipe.train_images is not None:
        generator = torch.Generator().manual_seed(recipe.subset_seed)
        subset = torch.randperm(len(train_x), generator=generator)[: recipe.train_images]
        train_x, train_y = train_x[subset], train_y[subset]
    if recipe.distilled:
        if recipe.teacher == "ensemble":
            teacher = load_teacher_ensemble(data, verbose=False)[0]
        elif teacher is None:
            raise ValueError(f"student {name!r} is distilled from notebook 01's teacher: pass the teacher")
    objective, feature = recipe.objective, recipe.feature
    # cached (the images are not augmented), and read back where a notebook stored them (03 stores both teachers'
    # logits of the training images); a feature term needs the live teacher instead
    teacher_logits = stored_logits(teacher, train_x) if objective.needs_teacher and feature is None else None
    if recipe.architecture == "StudentMLP":
        cohort = MLPCohort(recipe.width, [seed])
        train_cohort(cohort, train_x, train_y, [objective], teacher_logits=teacher_logits, epochs=epochs,
                     batch_size=recipe.batch_size, progress=progress, name=name)
        model = cohort.member(0)
    else:
        config.set_seed(seed)
        model = recipe.model()
        common: dict[str, Any] = {"val": (data.val_x, data.val_y), "epochs": epochs, "seed": seed, "progress": progress,
                                  "name": name, "verbose": False, "batch_size": recipe.batch_size}
        if feature is not None and feature.hint_epochs:
            train_fitnets(model, teacher, train_x, train_y, feature.term(), hint_epochs=feature.hint_epochs,
                          temperature=objective.temperature, alpha=objective.alpha, **common)
        elif feature is not None:
            train(model, train_x, train_y, objective=replace(objective, feature_terms=(feature.term(),)), teacher=teacher,
                  **common)
        else:
            train(model, train_x, train_y, objective=objective, teacher_logits=teacher_logits, **common)
    metadata = {"test_accuracy": accuracy(model, data.test_x, data.test_y), "recipe": recipe.as_dict(), "seed": seed,
                "epochs": epochs, "trained_by": "kd.recipes.train_student"}
    return model.eval(), metadata


def load_or_train_student(name: str, data, teacher: nn.Module | None = None, verbose: bool = True):
    """Return (student, metadata): from its checkpoint if a notebook saved it, else trained now and saved."""
    recipe = _recipe(name)
    path = student_path(name)
    if path.exists():
        try:
            model, metadata = load_checkpoint(path)
            if "recipe" in metadata and metadata["recipe"] != recipe.as_dict():
                raise CheckpointMismatchError(f"{path.name} was trained with another recipe ({metadata.get('recipe')}) "
                                              f"than kd.STUDENT_RECIPES[{name!r}] ({recipe.as_dict()})")
            if verbose:
                source = f"notebook {metadata['notebook']}" if "notebook" in metadata else metadata.get("trained_by", "?")
                print(f"{name}: loaded from {path.name} (saved by {source})")
            return model.eval(), metadata
        except CheckpointMismatchError as error:
            print(f"{name}: retraining, the checkpoint does not fit: {error}")
    if verbose:
        print(f"{name}: no checkpoint, training it now with its recipe")
    model, metadata = train_student(name, data, teacher, progress=verbose)
    save_student(name, model, metadata)
    return model, metadata
