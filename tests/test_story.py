"""Notebooks 05 and 07 tell one story: 05 picks the student to ship on validation, 07 ships that student."""

import json
import re
from pathlib import Path

import pytest

import kd_utils as kd

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def code_of(notebook: str) -> str:
    """Return the source of every code cell of `notebook`, joined."""
    cells = json.loads((NOTEBOOKS / notebook).read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")


def row(name, val_accuracy, test_accuracy, speedup):
    return {"name": name, "val_accuracy": val_accuracy, "accuracy": test_accuracy, "speedup_batch1": speedup}


def test_recommend_student_picks_by_validation_not_by_test():
    rows = [row("teacher", 92.0, 92.0, 1.0),
            row("best_on_test", 90.5, 91.5, 10.0),
            row("best_on_validation", 91.0, 90.0, 10.0)]
    chosen, reason = kd.recommend_student(rows)
    assert chosen["name"] == "best_on_validation"
    assert "validation" in reason


def test_recommend_student_keeps_the_speedup_limit():
    rows = [row("teacher", 92.0, 92.0, 1.0), row("slow_but_accurate", 91.9, 91.9, 3.0), row("fast", 90.5, 90.0, 10.0)]
    assert kd.recommend_student(rows)[0]["name"] == "fast"


def test_recommend_student_falls_back_to_the_most_accurate_fast_student_on_validation():
    rows = [row("teacher", 92.0, 92.0, 1.0), row("fast_a", 89.5, 89.9, 11.0), row("fast_b", 89.8, 89.2, 11.5),
            row("slow", 91.5, 91.0, 3.0)]
    chosen, reason = kd.recommend_student(rows, min_speedup=5.0, max_loss=2.0)
    assert chosen["name"] == "fast_b"
    assert "falls back" in reason


def test_recommend_student_falls_back_to_all_students_when_none_is_fast_enough():
    rows = [row("teacher", 92.0, 92.0, 1.0), row("a", 88.0, 89.0, 2.0), row("b", 89.0, 88.0, 3.0)]
    assert kd.recommend_student(rows)[0]["name"] == "b"


def test_recommend_student_refuses_a_table_without_the_teacher():
    with pytest.raises(ValueError, match="teacher"):
        kd.recommend_student([row("a", 88.0, 89.0, 2.0)])


def test_notebook_05_chooses_with_the_rule_on_validation_and_records_the_choice():
    code = code_of("05_compression_scorecard.ipynb")
    assert "kd.recommend_student(rows" in code
    assert '"val_accuracy": 100 * kd.accuracy(model, data.val_x, data.val_y)' in code
    assert "recommendation.json" in code


def test_notebook_07_ships_what_the_rule_picks():
    code = code_of("07_deploy_and_scale.ipynb")
    assert "recommendation.json" in code, "07 must read 05's choice"
    assert "kd.recommend_student(" in code, "07 must apply the same rule when 05 has not run"
    assert not re.search(r"""SHIPPED\s*=\s*["']""", code), "07 must not hard-code the shipped student"
    assert "mlp_kd" not in code, "07's code must not name the shipped student"
