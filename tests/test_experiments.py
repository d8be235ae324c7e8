"""Every search in experiments/ runs on a tiny budget (--smoke), records its provenance, and resumes.

The searches run in this process (``main(argv)``), sharing one smoke output folder as ``run_all.py --smoke`` does:
its smoke teacher is trained once (1 epoch on 200 images) and reused. The searches that start processes of their
own are checked elsewhere (headline_robustness.py --smoke in tests/test_headline.py, search_lm_kd.py --smoke in
tests/test_lm_train.py); here search_lm_kd runs its workers in this process.
"""

from __future__ import annotations

import importlib
import sys

import pytest

import kd_utils as kd
from kd_utils import lm_train as lt

EXPERIMENTS = kd.PROJECT_ROOT / "experiments"
PROVENANCE = ["commit", "torch", "threads", "cpu_capability"]


def _module(name: str):
    if str(EXPERIMENTS) not in sys.path:
        sys.path.insert(0, str(EXPERIMENTS))  # the scripts import results_table from their own folder
    return importlib.import_module(name)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Smoke-sized ops are fastest on one thread (two threads on a busy 2-core CPU were up to 25x slower)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def smoke_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("searches_smoke")


@pytest.fixture
def smoke_env(monkeypatch, smoke_folder):
    """Let --smoke switch to smoke mode and its checkpoint folder; undo both after the test."""
    monkeypatch.setenv("KD_SMOKE", "1")
    monkeypatch.setenv("KD_CHECKPOINT_DIR", str(smoke_folder / "checkpoints"))
    monkeypatch.setattr(kd.config, "CHECKPOINT_DIR", kd.config.CHECKPOINT_DIR)
    return smoke_folder


def _check_rows(path, fields):
    rt = _module("results_table")
    rows = rt.read_rows(path)
    assert rows, f"{path.name} has no rows"
    assert list(rows[0]) == list(fields)
    import torch

    for row in rows:
        assert row["commit"] and row["commit"] != "unknown"
        assert row["torch"] == torch.__version__
        assert int(row["threads"]) == torch.get_num_threads()
        assert row["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    return rows


SEARCHES = ["search_full_label_kd", "search_feature_regime", "search_feature_cnn", "search_dkd"]


@pytest.mark.parametrize("name", SEARCHES)
def test_a_search_runs_tiny_records_its_provenance_and_resumes(name, smoke_env, capsys):
    search = _module(name)
    assert search.main(["--smoke", "--output", str(smoke_env)]) == 0
    table = smoke_env / search.TABLE
    rows = _check_rows(table, search.FIELDS)
    assert all(row["seeds"] == "0 1" for row in rows)
    capsys.readouterr()
    before = table.read_bytes()
    assert search.main(["--smoke", "--output", str(smoke_env)]) == 0
    assert "already complete" in capsys.readouterr().out
    assert table.read_bytes() == before


def test_the_language_model_search_runs_tiny_records_its_provenance_and_resumes(smoke_env, monkeypatch, capsys):
    search = _module("search_lm_kd")
    started = []

    def in_this_process(phase, isa, settings, smoke, results):  # the same worker, without a fresh interpreter
        if not search.missing(results, phase, isa, settings, smoke):
            return False
        started.append((phase, isa))
        search.worker(phase, isa, smoke, results, search.json.dumps(settings))
        return True

    monkeypatch.setattr(search, "in_subprocess", in_this_process)
    monkeypatch.setitem(lt.TEACHER_SCHEDULE, "smoke", lt.LMSchedule(steps=5, batch_size=2, warmup=1))  # tinier still
    monkeypatch.setitem(lt.STUDENT_SCHEDULE, "smoke", lt.LMSchedule(steps=3, batch_size=2, warmup=1))
    assert search.main(["--smoke", "--output", str(smoke_env)]) == 0
    assert started == [("search", "native"), ("confirm", "native"), ("confirm", "avx2")]
    rows = _check_rows(smoke_env / search.RESULTS.name, search.FIELDS)
    assert len(rows) == len(search.cells(True)) * 2 + 2 * 2 * 2  # search cells × 2 seeds, then 2 cells × 2 seeds × 2 ISAs
    capsys.readouterr()
    started.clear()
    assert search.main(["--smoke", "--output", str(smoke_env)]) == 0
    assert started == [] and "already complete" in capsys.readouterr().out


def test_a_teacher_variant_trains_tiny_once(smoke_env, capsys):
    variant = _module("train_teacher_variant")
    assert variant.main(["--smoke", "--output", str(smoke_env), "--epochs", "15", "--shift", "2"]) == 0
    path = smoke_env / "teachers" / "teacher_e15_shift2_seed0.pt"
    _, metadata = kd.load_checkpoint(path)
    assert metadata["recipe"]["epochs"] == 1 and all(metadata[key] for key in PROVENANCE)
    assert not (EXPERIMENTS / "teachers" / path.name).samefile(path)
    capsys.readouterr()
    assert variant.main(["--smoke", "--output", str(smoke_env), "--epochs", "15", "--shift", "2"]) == 0
    assert "already complete" in capsys.readouterr().out


def test_smoke_never_writes_into_the_committed_results():
    rt = _module("results_table")
    parser = rt.argparse.ArgumentParser()
    rt.add_run_options(parser)
    with pytest.raises(SystemExit, match="never writes into experiments/results"):
        rt.output_folder(parser.parse_args(["--smoke", "--output", str(EXPERIMENTS / "results")]), "x")


def test_rows_added_to_a_table_without_provenance_get_the_columns_and_old_rows_keep_them_empty(tmp_path):
    rt = _module("results_table")
    path = tmp_path / "table.csv"
    rt.append_rows(path, ["a", "b"], [{"a": 1, "b": 2}])
    rt.append_rows(path, ["a", "b", *PROVENANCE], [{"a": 3, "b": 4, **rt.provenance()}])
    rows = rt.read_rows(path)
    assert list(rows[0]) == ["a", "b", *PROVENANCE]
    assert [rows[0][key] for key in PROVENANCE] == ["", "", "", ""]
    assert rows[1]["a"] == "3" and all(rows[1][key] for key in PROVENANCE)


def test_the_committed_tables_have_the_provenance_columns():
    rt = _module("results_table")
    for path in sorted((EXPERIMENTS / "results").glob("*.csv")):
        rows = rt.read_rows(path)
        assert set(PROVENANCE) <= set(rows[0]), f"{path.name} lacks a provenance column"


def test_run_all_knows_every_search_in_experiments():
    run_all = _module("run_all")
    scripts = {p.stem for p in EXPERIMENTS.glob("search_*.py")} | {"headline_robustness"}
    assert scripts == {step.name for step in run_all.STEPS if step.name != "teachers"}


def test_the_objective_columns_of_the_committed_tables_are_those_their_searches_declare():
    fill = _module("add_objective_columns")
    assert fill.main(["--check"]) == 0  # every row's temperature, alpha, ... are its named objective's
    objectives = fill.declared()["feature_search.csv"]
    header = "regime,objective,seeds\r\n"
    text = fill.filled(header + '550,"KD T=2 α=0.5, hint β=1",0 1 2\r\n', objectives)
    assert text.splitlines()[1] == '550,"KD T=2 α=0.5, hint β=1",2,0.5,0,true,1,0 1 2'
    with pytest.raises(SystemExit, match="no declared objective is called 'KD T=9 α=0.5'"):
        fill.filled(header + "550,KD T=9 α=0.5,0 1 2\r\n", objectives)
