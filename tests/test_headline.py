"""Notebook 03's headline must survive a change of machine: the committed report and a check that can fail."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

import kd_utils as kd

SCRIPT = kd.PROJECT_ROOT / "experiments" / "headline_robustness.py"


def _script():
    sys.path.insert(0, str(SCRIPT.parent))  # the script imports results_table from its own folder
    spec = importlib.util.spec_from_file_location("headline_robustness", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_report_is_what_the_declared_rule_makes_of_the_committed_table():
    script = _script()
    rows = script.read_rows(script.RESULTS)
    committed = json.loads(script.REPORT.read_text())
    assert committed == json.loads(json.dumps(script.report(rows)))
    assert set(committed["runs"]) == set(script.RUNS), "every declared run is in the table"
    # the runs cover three instruction sets, three disjoint seed sets and a retrained teacher
    assert {r["cpu_capability"] for r in rows} >= {"AVX2", "DEFAULT"}
    assert len({r["seeds"] for r in rows}) == 3 and any(r["teacher"].startswith("retrained") for r in rows)


def test_the_headline_is_a_clear_gain_in_every_run_and_its_smallest_mean_is_at_least_one_point():
    committed = json.loads(_script().REPORT.read_text())
    headline = committed["candidates"][committed["headline"]]
    assert committed["headline_qualifies"]
    for split in ("val", "test"):
        assert set(headline[split]["verdicts"].values()) == {"clear gain"}
        assert headline[split]["smallest_mean"] >= 1.0


@pytest.mark.skipif(os.environ.get("KD_SKIP_ISA_CHECK") == "1", reason="KD_SKIP_ISA_CHECK=1")
def test_the_headline_gives_the_same_verdict_under_a_second_instruction_set():
    # smoke-sized: the same comparison natively and with ATEN_CPU_CAPABILITY=default (SSE), in fresh processes
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "the same verdict under both instruction sets: clear gain" in done.stdout, done.stdout


def test_the_readme_quotes_the_ranges_and_verdicts_of_the_committed_report():
    committed = json.loads(_script().REPORT.read_text())
    readme = (kd.PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    same = committed["candidates"]["same_images"]
    entries = [same["test"], committed["candidates"]["full_labels"]["test"], *(c["test"] for c in same["controls"].values())]
    for entry in entries:
        values = list(entry["verdicts"].values())
        verdicts = ", ".join(f"{values.count(w)} × {w}" for w in sorted(set(values)))
        row = f"{entry['smallest_mean']:+.2f} to {entry['largest_mean']:+.2f} pp"
        assert any(row in line and verdicts in line for line in readme.splitlines()), (row, verdicts)
    val_clear = list(committed["candidates"]["full_labels"]["val"]["verdicts"].values()).count("clear gain")
    assert f"({val_clear} of {len(committed['runs'])})" in readme
