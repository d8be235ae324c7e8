"""The notebooks tell one story: 05 picks the student to ship on validation and 07 ships it; every "±" comes from
the yardstick; every notebook asks the learner to predict before it reveals."""

import csv
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


# ----------------------------------------------------------------------------- one yardstick for every "±"

NOTEBOOK_PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
# The yardstick: kd.compare (paired differences, 95 % interval, verdict) and the sample standard deviation
# it is built on (kd.mean_std, kd.stats.sample_std). 03 binds `mean_std = kd.mean_std`, which this also finds.
YARDSTICK_CALL = re.compile(r"\bkd\.(?:stats\.)?(compare|mean_std|sample_std)\b")


def shown_text(notebook: dict) -> str:
    """Return what a reader sees as text: every markdown cell and every stored text output (plain, Markdown, HTML)."""
    parts = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            parts.append("".join(cell["source"]))
        for output in cell.get("outputs", []):
            parts.append("".join(output.get("text", "")))
            for mime in ("text/plain", "text/markdown", "text/html"):
                value = output.get("data", {}).get(mime, "")
                parts.append("".join(value) if isinstance(value, list) else value)
    return "\n".join(parts)


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=[p.stem for p in NOTEBOOK_PATHS])
def test_a_notebook_that_shows_plus_minus_computes_it_with_the_yardstick(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    if "±" not in shown_text(notebook):
        return
    code = "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code")
    assert YARDSTICK_CALL.search(code), (
        f"{path.name} shows '±' but its code never calls kd.compare, kd.mean_std or kd.stats.sample_std: compute the "
        "spread with the course's yardstick (sample std, paired differences) instead of by hand")


@pytest.mark.parametrize("table, gains, spread", [
    ("full_label_search.csv", "test_gains", "test_gain_std"),
    ("dkd_search.csv", "test_gains", "test_gain_std"),
    ("feature_search.csv", "test_gains_vs_kd", "test_gain_vs_kd_std"),
    ("feature_search_cnn.csv", "test_gains_vs_kd", "test_gain_vs_kd_std"),
])
def test_the_search_tables_the_notebooks_quote_with_plus_minus_hold_sample_standard_deviations(table, gains, spread):
    with open(NOTEBOOKS.parent / "experiments" / "results" / table, encoding="utf-8") as file:
        rows = [row for row in csv.DictReader(file) if len(row[gains].split()) >= 2]
    assert rows
    # the per-seed gains are stored to 2 decimals, so their std can differ from the stored one by about 0.01
    wrong = [(row[spread], f"{kd.stats.sample_std([float(g) for g in row[gains].split()]):.2f}") for row in rows
             if abs(float(row[spread]) - kd.stats.sample_std([float(g) for g in row[gains].split()])) > 0.011]
    assert not wrong, f"{len(wrong)} of {len(rows)} rows of {table}: stored std against the sample std {wrong[:3]}"


# ----------------------------------------------------------------------------- predict, then run

PREDICT = "**Predict before you run.**"
LESSONS = [path for path in NOTEBOOK_PATHS if path.name[:2] in {"01", "02", "03", "04", "05", "06", "07"}]


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_lesson_asks_for_a_prediction_right_before_the_cell_that_reveals_it(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    questions = [index for index, cell in enumerate(cells)
                 if cell["cell_type"] == "markdown" and "".join(cell["source"]).lstrip().startswith(PREDICT)]
    assert questions, f"{path.name} has no '{PREDICT}' cell: ask the learner for a guess before a cell reveals it"
    for index in questions:
        assert index + 1 < len(cells) and cells[index + 1]["cell_type"] == "code", (
            f"{path.name}: the question in cell {index} must be followed by the code cell whose output answers it")
        assert re.fullmatch(r"[0-9a-f]{8}", cells[index]["id"]), f"{path.name}: cell {index} needs an 8-hex-digit id"
