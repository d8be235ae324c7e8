"""The scorecard's students: where each is saved, and the recipe that retrains it if it is missing.

Notebooks 03 and 04 train these students (choosing T, α and feature weights on the
validation split) and save the seed-0 model of each with `save_student`. Notebook 05
loads them; if a notebook has not run, `load_or_train_student` retrains that student
with the recipe below, whose hyperparameters are the ones the full run of 03/04 chose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import config
from .checkpoints import CheckpointMismatchError, load_checkpoint, save_checkpoint
from .cohort import MLPCohort, train_cohort
from .evaluate import accuracy, predict_logits
from .losses import AttentionTransferLoss, CosineLoss, FeatureTerm, HintLoss, Objective
from .models import build_model
from .recipes import load_teacher_ensemble
from .train import train, train_fitnets

# Notebook 03's full-label regime, chosen on the validation split by experiments/search_full_label_kd.py
# (results: experiments/results/full_label_search.csv); notebook 03 asserts that this is what the search chose.
MLP_REGIME: dict[str, Any] = {"architecture": "StudentMLP", "config": {"hidden": 128}, "epochs": 30, "batch_size": 128,
                              "teacher": "ensemble"}
# name -> architecture, config, epochs, batch size, teacher, and the objective: "distill" (T, α; None: labels only)
# and "smoothing" (label smoothing ε). MLP students train as a one-member kd.MLPCohort, exactly as in notebook 03.
STUDENT_RECIPES: dict[str, dict[str, Any]] = {
    "mlp_scratch": {**MLP_REGIME, "distill": None},
    "mlp_kd": {**MLP_REGIME, "distill": {"temperature": 2.0, "alpha": 0.5}},
    "mlp_ls": {**MLP_REGIME, "distill": None, "smoothing": 0.1},
    "cnn_scratch": {"architecture": "StudentCNN", "config": {"width": 8}, "epochs": 1, "distill": None},
    "cnn_kd": {"architecture": "StudentCNN", "config": {"width": 8}, "epochs": 1,
               "distill": {"temperature": 2.0, "alpha": 0.5}},
}
# Notebook 04's students: a seeded subset of 8,000 training images, 3 epochs, notebook 03's T and α for every method;
# each feature weight is the one notebook 04 chose on validation (its full run asserts that these hold its choices).
_FEATURE_BASE = {"architecture": "StudentCNN", "config": {"width": 8}, "epochs": 3, "train_images": 8_000,
                 "subset_seed": 0, "distill": STUDENT_RECIPES["mlp_kd"]["distill"]}
_BLOCK2 = {"student_layer": "block2", "teacher_layer": "block2", "student_channels": 16, "teacher_channels": 48}
STUDENT_RECIPES.update({
    "cnn_hint_kd": {**_FEATURE_BASE, "feature": {"kind": "hint", "weight": 1.0, **_BLOCK2}},
    "cnn_at_kd": {**_FEATURE_BASE, "feature": {"kind": "attention", "weight": 2.0, **_BLOCK2}},
    "cnn_cosine_kd": {**_FEATURE_BASE, "feature": {"kind": "cosine", "weight": 1.0, **_BLOCK2}},
    "cnn_fitnets": {**_FEATURE_BASE, "epochs": 2,
                    "feature": {"kind": "hint", "weight": 1.0, "two_stage": True, "hint_epochs": 1, **_BLOCK2}},
})

SMOKE_EPOCHS = 1


def student_path(name: str) -> Path:
    """Return where the student called `name` is kept in the current mode."""
    return config.checkpoint_dir() / f"student_{name}.pt"


def save_student(name: str, model: nn.Module, metadata: dict[str, Any]) -> Path:
    """Save a trained student under its scorecard name (atomically)."""
    return save_checkpoint(model, student_path(name), metadata)


def train_student(name: str, data, teacher: nn.Module | None = None, seed: int = 0, progress: bool = False):
    """Train the student `name` with its recipe; return (model, metadata)."""
    if name not in STUDENT_RECIPES:
        raise KeyError(f"no student called {name!r}; known: {', '.join(STUDENT_RECIPES)}")
    recipe = STUDENT_RECIPES[name]
    if recipe.get("teacher", "course") not in ("course", "ensemble"):
        raise ValueError(f"recipe {name!r} names an unknown teacher {recipe['teacher']!r}; use 'course' or 'ensemble'")
    epochs = SMOKE_EPOCHS if config.is_smoke() else recipe["epochs"]
    config.set_seed(seed)
    model = build_model(recipe["architecture"], **recipe["config"])
    kwargs: dict[str, Any] = {"val": (data.val_x, data.val_y), "epochs": epochs, "seed": seed, "progress": progress,
                              "name": name, "verbose": False}
    if "batch_size" in recipe:  # otherwise kd.train's default
        kwargs["batch_size"] = recipe["batch_size"]
    train_x, train_y = data.train_x, data.train_y
    if "train_images" in recipe:
        generator = torch.Generator().manual_seed(recipe["subset_seed"])
        subset = torch.randperm(len(train_x), generator=generator)[: recipe["train_images"]]
        train_x, train_y = train_x[subset], train_y[subset]
    distill = recipe.get("distill")
    feature = recipe.get("feature")
    if recipe.get("teacher") == "ensemble" and distill is not None:
        teacher = load_teacher_ensemble(data, verbose=False)[0]
    if distill is not None or feature is not None:
        if teacher is None:
            raise ValueError(f"student {name!r} is distilled: pass the teacher")
    if recipe["architecture"] == "StudentMLP" and feature is None:
        objective = Objective(smoothing=recipe.get("smoothing", 0.0), **(distill or {}))
        teacher_logits = predict_logits(teacher, train_x) if objective.needs_teacher else None
        cohort = MLPCohort(recipe["config"]["hidden"], [seed])
        train_cohort(cohort, train_x, train_y, [objective], teacher_logits=teacher_logits, epochs=epochs,
                     batch_size=kwargs.get("batch_size", 128), progress=progress, name=name)
        model = cohort.member(0)
    elif feature is not None:
        term = _feature_term(feature)
        if feature.get("two_stage"):
            train_fitnets(model, teacher, train_x, train_y, term, hint_epochs=feature["hint_epochs"], **distill, **kwargs)
        else:
            train(model, train_x, train_y, objective=Objective(**distill, feature_terms=(term,)), teacher=teacher, **kwargs)
    elif distill is not None:
        train(model, train_x, train_y, objective=Objective(**distill), teacher_logits=predict_logits(teacher, train_x),
              **kwargs)
    else:
        train(model, train_x, train_y, **kwargs)
    metadata = {"test_accuracy": accuracy(model, data.test_x, data.test_y), "recipe": recipe, "seed": seed,
                "epochs": epochs, "trained_by": "kd.train_student"}
    return model.eval(), metadata


def _feature_term(feature: dict[str, Any]) -> FeatureTerm:
    kind = feature["kind"]
    if kind == "hint":
        loss: nn.Module = HintLoss(feature["student_channels"], feature["teacher_channels"])
    elif kind == "attention":
        loss = AttentionTransferLoss()
    elif kind == "cosine":
        loss = CosineLoss(feature["student_channels"], feature["teacher_channels"])
    else:
        raise ValueError(f"unknown feature loss {kind!r}")
    return FeatureTerm(loss, feature["student_layer"], feature["teacher_layer"], feature["weight"])


def load_or_train_student(name: str, data, teacher: nn.Module | None = None, verbose: bool = True):
    """Return (student, metadata): from its checkpoint if a notebook saved it, else trained now and saved."""
    if name not in STUDENT_RECIPES:
        raise KeyError(f"no student called {name!r}; known: {', '.join(STUDENT_RECIPES)}")
    path = student_path(name)
    if path.exists():
        try:
            model, metadata = load_checkpoint(path)
            if "recipe" in metadata and metadata["recipe"] != STUDENT_RECIPES[name]:
                raise CheckpointMismatchError(
                    f"{path.name} was trained with another recipe ({metadata.get('recipe')}) than "
                    f"kd.STUDENT_RECIPES[{name!r}] ({STUDENT_RECIPES[name]})"
                )
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
