"""One source of truth: the recipes hold what the search chose, and a checkpoint never mixes recipes."""

from __future__ import annotations

import csv
from dataclasses import replace

import pytest
import torch

import kd_utils as kd
from kd_utils import recipes

SEARCH = kd.PROJECT_ROOT / "experiments" / "results" / "full_label_search.csv"


def _search_rows() -> list[dict]:
    with SEARCH.open() as file:
        return list(csv.DictReader(file))


def test_the_mlp_recipes_hold_the_regime_the_search_chose_on_validation():
    rows = [r for r in _search_rows() if float(r["alpha"]) > 0
            and int(r["epochs"]) * max(int(r["copies"]), 1) <= 30 and int(r["width"]) <= 128]  # notebook 03's budget
    best = max(rows, key=lambda r: float(r["val_mean"]))  # the most accurate distilled student on validation
    recipe = kd.STUDENT_RECIPES["mlp_kd"]
    assert (int(best["width"]), int(best["epochs"]), int(best["batch_size"]), best["teacher"]) == (
        recipe.width, recipe.epochs, recipe.batch_size, recipe.teacher)
    assert (float(best["temperature"]), float(best["alpha"])) == (recipe.objective.temperature, recipe.objective.alpha)
    assert best["objective"] == recipe.objective.describe()
    assert recipe.objective == recipes.CHOSEN_KD
    assert kd.recipes.ENSEMBLE_SEEDS == tuple(range(5 if best["teacher"] == "ensemble5" else 3))


def test_label_smoothing_epsilon_is_the_one_chosen_on_validation():
    recipe = kd.STUDENT_RECIPES["mlp_ls"]
    regime = kd.STUDENT_RECIPES["mlp_kd"]
    rows = [r for r in _search_rows() if r["group"] == "controls" and float(r["smoothing"]) > 0
            and int(r["width"]) == regime.width and r["teacher"] == regime.teacher]
    assert rows, "the search has no label-smoothing rows for the chosen regime"
    best = max(rows, key=lambda r: float(r["val_mean"]))
    assert float(best["smoothing"]) == recipe.objective.smoothing > 0 and best["objective"] == recipe.objective.describe()
    assert replace(recipe, objective=kd.losses.SCRATCH) == replace(regime, objective=kd.losses.SCRATCH)


def test_the_feature_recipes_hold_what_notebook_04s_full_run_chose_on_validation():
    import ast
    import json

    cells = json.loads((kd.PROJECT_ROOT / "notebooks" / "04_feature_distillation.ipynb").read_text(encoding="utf-8"))["cells"]
    printed = "".join("".join(o.get("text", "")) for c in cells if c["cell_type"] == "code" for o in c.get("outputs", []))
    line = next(line for line in printed.splitlines() if line.startswith("chosen on validation: {"))
    chosen = {method: float(weight) for method, weight in ast.literal_eval(line.split(": ", 1)[1]).items()}
    held = {method: kd.STUDENT_RECIPES[f"cnn_{method}"].feature.weight for method in chosen}
    assert held == chosen, "kd.STUDENT_RECIPES' feature weights differ from notebook 04's committed choice"
    for method in chosen:  # T and α are notebook 03's, read from its recipe, never copied
        assert kd.STUDENT_RECIPES[f"cnn_{method}"].objective == kd.STUDENT_RECIPES["mlp_kd"].objective


def test_a_student_trained_alone_equals_the_same_member_of_a_larger_cohort(data):
    x, y = data.train_x[:600], data.train_y[:600]
    teacher_logits = torch.randn(len(x), 10)
    objective = kd.Objective(alpha=0.5, temperature=2.0)
    big = kd.MLPCohort(32, [0, 1, 0])
    kd.train_cohort(big, x, y, [kd.losses.SCRATCH, kd.losses.SCRATCH, objective], teacher_logits=teacher_logits, epochs=2,
                    progress=False)
    alone = kd.MLPCohort(32, [0])
    kd.train_cohort(alone, x, y, [objective], teacher_logits=teacher_logits, epochs=2, progress=False)
    assert torch.equal(big.member(2).hidden[1].weight, alone.member(0).hidden[1].weight)


def test_a_checkpoint_from_another_recipe_is_retrained_not_mixed(data, monkeypatch, capsys):
    tiny = recipes.StudentRecipe("StudentMLP", 8, epochs=1, batch_size=256)
    monkeypatch.setitem(recipes.STUDENT_RECIPES, "tiny", tiny)
    model, _ = kd.load_or_train_student("tiny", data, verbose=False)
    monkeypatch.setitem(recipes.STUDENT_RECIPES, "tiny", replace(tiny, objective=kd.Objective(smoothing=0.1)))
    kd.load_or_train_student("tiny", data)
    assert "another recipe" in capsys.readouterr().out


@pytest.mark.parametrize("field, value, message", [
    ("teacher", "oracle", "StudentRecipe.teacher must be one of"),
    ("architecture", "ResNet", "StudentRecipe.architecture must be"),
    ("feature", recipes.FeatureRecipe("hint", 1.0), "needs architecture='StudentCNN'"),
    ("width", 0, "StudentRecipe.width must be a whole number"),
    ("epochs", 2.5, "StudentRecipe.epochs must be a whole number"),
    ("train_images", -5, "StudentRecipe.train_images must be a whole number"),
])
def test_a_recipe_naming_an_unknown_model_or_teacher_is_refused_naming_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        replace(kd.STUDENT_RECIPES["mlp_kd"], **{field: value})
    with pytest.raises(ValueError, match="FeatureRecipe.kind must be one of"):
        recipes.FeatureRecipe("gram", 1.0)
    with pytest.raises(TypeError, match="StudentRecipe.objective must be a kd.Objective"):
        replace(kd.STUDENT_RECIPES["mlp_kd"], objective={"alpha": 0.5})


def test_the_default_temperature_and_alpha_are_written_once():
    import inspect
    for function in (kd.kd_loss, kd.distillation_loss, kd.train_fitnets, kd.losses.decoupled_kd_terms):
        parameters = inspect.signature(function).parameters
        assert parameters["temperature"].default == kd.losses.TEMPERATURE, function.__name__
        if "alpha" in parameters and function is not kd.losses.decoupled_kd_terms:
            assert parameters["alpha"].default == kd.losses.ALPHA, function.__name__


def test_every_distilled_recipe_uses_notebook_03s_chosen_t_and_alpha():
    for name, recipe in kd.STUDENT_RECIPES.items():
        assert recipe.objective in (kd.losses.SCRATCH, recipes.CHOSEN_KD) or recipe.objective.smoothing > 0, name


def test_a_missing_ensemble_member_names_how_to_get_it_back(data, monkeypatch, tmp_path):
    monkeypatch.setattr(kd.recipes, "SHIPPED_TEACHERS", tmp_path)
    monkeypatch.setattr(kd.recipes, "load_or_train_teacher", lambda *a, **k: (kd.StudentMLP(8), {}))
    with pytest.raises(FileNotFoundError, match="train_teacher_variant.py --epochs 5 --shift 0 --seed 1"):
        kd.load_teacher_ensemble(seeds=(0, 1), verbose=False)


def test_a_teacher_checkpoint_trained_with_other_settings_than_its_recipe_is_retrained_naming_the_difference(
        data, capsys, monkeypatch):
    monkeypatch.setenv("KD_SMOKE", "1")
    teacher, metadata = kd.load_or_train_teacher(data, verbose=False)
    assert metadata["recipe"] == kd.recipes.teacher_recipe()
    metadata["recipe"] = {**metadata["recipe"], "epochs": 7, "lr": 0.1}
    kd.save_checkpoint(teacher, kd.teacher_path(), metadata)
    capsys.readouterr()
    _, reloaded = kd.load_or_train_teacher(data, verbose=False)
    out = capsys.readouterr().out
    assert "epochs=7 where the recipe says epochs=1" in out and "lr=0.1" in out
    assert reloaded["recipe"] == kd.recipes.teacher_recipe()  # retrained by the recipe


def test_an_older_teacher_checkpoint_without_a_recipe_is_checked_by_what_it_recorded():
    from kd_utils.recipes import recipe_difference, teacher_recipe

    assert recipe_difference({"epochs": 5, "seed": 0}, teacher_recipe() | {"epochs": 5}) == ""
    assert "seed=3" in recipe_difference({"epochs": 5, "seed": 3}, teacher_recipe() | {"epochs": 5})
