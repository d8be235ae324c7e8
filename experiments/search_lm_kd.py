"""Notebook 08: where does next-token distillation of a character language model beat training from scratch?

Fixed, the notebook's budget (``kd_utils.lm_train``'s recipes): notebook 08's teacher (TinyGPT, 4 layers × 128,
trained from seed 0), a student of 2 layers × 64 (about 7.5× fewer parameters), 300 steps of 16 windows of 64
characters each, AdamW with a linear warm-up and a cosine decay. Within a seed, every student reads the same
windows in the same order and starts from the same weights, so two objectives are compared on paired runs.

Searched on seeds 100, 101, 102 (the notebook uses 0, 1, 2; the search never does):

  scratch      cross-entropy with the text, lr ∈ {3e-3, 6e-3, 1.2e-2}
  forward KL   soft_weight 1, lr ∈ {3e-3, 6e-3, 1.2e-2} × T ∈ {1, 2} × hard_weight ∈ {0, 0.5}

THE RULE, declared before any run (the results table is written after this docstring was committed):
  1. Scratch's learning rate is the one with the lowest mean validation NLL over the three search seeds: the
     baseline is tuned as hard as the method.
  2. The distillation regime is the forward-KL cell with the lowest mean validation NLL.
  3. Confirmation on seeds 0, 1, 2: the chosen regime against tuned scratch, judged by the course's yardstick on
     validation NLL, ``kd.compare(scratch, distilled)`` (a gain is a drop in nats per character), once natively
     and once under AVX2 with the teacher retrained under AVX2, each in a fresh process. The regime is a clear
     win if the verdict is "clear gain" in both; notebook 08 says what the verdicts are, whatever they are.
  Validation NLL is measured on the two validation plays (Julius Caesar, Twelfth Night). The test plays are not read.

    .venv/bin/python experiments/search_lm_kd.py            # the search, then the confirmation; resumable
    .venv/bin/python experiments/search_lm_kd.py --report   # apply the rule to the table
    .venv/bin/python experiments/search_lm_kd.py --smoke    # the same code on the tiny test corpus, a few seconds

Rows already in results/lm_kd_search.csv are skipped (a phase with nothing left starts no process); the report goes
to results/lm_kd_search.json, which notebook 08 and tests/test_lm_train.py read. --smoke writes both into --output
(default: a new temporary folder).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from results_table import PROVENANCE, add_run_options, append_rows, output_folder, provenance, read_rows, say_complete

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "lm_kd_search.csv"
REPORT = HERE / "results" / "lm_kd_search.json"
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
SEARCH_SEEDS = (100, 101, 102)
CONFIRM_SEEDS = (0, 1, 2)
LRS = (3e-3, 6e-3, 1.2e-2)
FIELDS = ["phase", "isa", "cell", "method", "lr", "temperature", "hard_weight", "seed", "val_nll", "seconds",
          *PROVENANCE]


def cells(smoke: bool) -> list[dict]:
    """Return the searched settings: (cell name, method, lr, T, hard weight)."""
    lrs = LRS[:1] if smoke else LRS
    rows = [{"cell": f"scratch lr={lr:g}", "method": "scratch", "lr": lr, "temperature": 1.0, "hard_weight": 1.0}
            for lr in lrs]
    rows += [{"cell": f"forward KL lr={lr:g} T={t:g} hard={h:g}", "method": "forward KL", "lr": lr, "temperature": t,
              "hard_weight": h} for lr in lrs for t in ((1.0,) if smoke else (1.0, 2.0)) for h in (0.0, 0.5)]
    return rows


def train_cells(phase: str, isa: str, settings: list[dict], seeds: tuple[int, ...], done: set, retrain_teacher: bool,
                smoke: bool, write) -> None:
    """Train every (cell, seed) not in `done`; call write(rows) after each seed so that a stop loses one seed at most."""
    import kd_utils as kd
    from kd_utils import lm
    from kd_utils import lm_train as lt

    corpus = lm.tiny_corpus() if smoke else lm.load_corpus(download=False)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lm_teacher.pt" if retrain_teacher else None
        teacher, _ = lt.load_or_train_lm_teacher(corpus, path=path, progress=False)
    tokens, val = corpus.tokenizer.encode(corpus.train), corpus.tokenizer.encode(corpus.val)
    facts = {"phase": phase, "isa": isa, **provenance()}
    base = lt.STUDENT_SCHEDULE[kd.mode_name()]
    for seed in seeds:
        todo = [cell for cell in settings if (phase, isa, cell["cell"], str(seed)) not in done]
        if not todo:
            continue
        windows = lt.training_windows(tokens, teacher.config.context, base, seed)
        caches = {}
        rows = []
        for cell in todo:
            if cell["method"] == "scratch":
                objective = lt.LMObjective("scratch")
                cache = None
            else:
                objective = lt.LMObjective("forward KL", hard_weight=cell["hard_weight"], soft_weight=1.0,
                                           temperature=cell["temperature"])
                if cell["temperature"] not in caches:
                    caches[cell["temperature"]] = lt.TeacherCache(teacher, windows, cell["temperature"])
                cache = caches[cell["temperature"]]
            schedule = replace(base, lr=cell["lr"])
            history = lt.train_lm(lt.new_student(teacher, seed), windows, objective, schedule, seed=seed,
                                  cache=cache, val_tokens=val, progress=False)
            rows.append({**facts, **cell, "seed": seed, "val_nll": f"{history.val_nll:.5f}",
                         "seconds": f"{history.seconds:.1f}"})
            print(f"{phase} {isa} seed {seed} {cell['cell']}: val {history.val_nll:.4f} nats/char, "
                  f"{history.seconds:.1f} s", flush=True)
        write(rows)


def mean_nll(rows: list[dict], phase: str, cell: str, isa: str = "native") -> float:
    values = [float(r["val_nll"]) for r in rows if (r["phase"], r["cell"], r["isa"]) == (phase, cell, isa)]
    return statistics.mean(values) if values else float("nan")


def confirmed(rows: list[dict], isa: str, cell: dict) -> list[float]:
    """Return the confirmation's validation NLL of `cell` under `isa`, in seed order."""
    by_seed = {int(r["seed"]): float(r["val_nll"]) for r in rows
               if (r["phase"], r["isa"], r["cell"]) == ("confirm", isa, cell["cell"])}
    return [by_seed[seed] for seed in sorted(by_seed)]


def choose(rows: list[dict], smoke: bool) -> tuple[dict, dict]:
    """Apply rules 1 and 2: return the chosen scratch cell and the chosen forward-KL cell."""
    searched = cells(smoke)
    scratch = min((c for c in searched if c["method"] == "scratch"), key=lambda c: mean_nll(rows, "search", c["cell"]))
    distilled = min((c for c in searched if c["method"] != "scratch"),
                    key=lambda c: mean_nll(rows, "search", c["cell"]))
    return scratch, distilled


def report(rows: list[dict], smoke: bool) -> dict:
    """Apply the rule to the table: the choices, and the confirmation's verdict in each instruction set."""
    import kd_utils as kd

    scratch, distilled = choose(rows, smoke)
    confirmation = {}
    for isa in ("native", "avx2"):
        base, method = (confirmed(rows, isa, cell) for cell in (scratch, distilled))
        if len(base) >= 2 and len(base) == len(method):
            comparison = kd.compare(base, method)  # baseline − method would be a loss; nats: lower is better
            confirmation[isa] = {"scratch": base, "distilled": method, "gain_nats": comparison.mean,
                                 "half_width": comparison.half_width, "verdict": comparison.verdict}
    searched = [{"cell": c["cell"], "method": c["method"], "lr": c["lr"], "temperature": c["temperature"],
                 "hard_weight": c["hard_weight"], "val_nll": mean_nll(rows, "search", c["cell"])} for c in cells(smoke)]
    return {"search_seeds": list(SEARCH_SEEDS), "confirm_seeds": list(CONFIRM_SEEDS), "cells": searched,
            "scratch": scratch, "distilled": distilled, "confirmation": confirmation,
            "clear_win": bool(confirmation) and all(c["verdict"] == "clear gain" for c in confirmation.values())}


def phase_seeds(phase: str, smoke: bool) -> tuple[int, ...]:
    seeds = SEARCH_SEEDS if phase == "search" else CONFIRM_SEEDS
    return seeds[:2] if smoke else seeds


def missing(results: Path, phase: str, isa: str, settings: list[dict], smoke: bool) -> int:
    """Return how many (cell, seed) runs of a phase are not in the table yet."""
    done = {(r["phase"], r["isa"], r["cell"], r["seed"]) for r in read_rows(results)}
    return sum((phase, isa, cell["cell"], str(seed)) not in done for cell in settings for seed in phase_seeds(phase, smoke))


def worker(phase: str, isa: str, smoke: bool, results: Path, settings: str) -> None:
    """Train one phase in this process (its instruction set already forced), adding rows to `results` seed by seed."""
    done = {(r["phase"], r["isa"], r["cell"], r["seed"]) for r in read_rows(results)}
    train_cells(phase, isa, json.loads(settings), phase_seeds(phase, smoke), done,
                retrain_teacher=isa != "native", smoke=smoke, write=lambda rows: append_rows(results, FIELDS, rows))


def in_subprocess(phase: str, isa: str, settings: list[dict], smoke: bool, results: Path) -> bool:
    """Run `worker` in a fresh Python, under AVX2 when `isa` says so (set before torch is imported).

    Return False, starting nothing, when every run of the phase is already in the table.
    """
    todo = missing(results, phase, isa, settings, smoke)
    if not todo:
        return False
    print(f"{phase} ({isa}): {todo} runs to train", flush=True)
    env = {k: v for k, v in os.environ.items() if k not in AVX2}
    env.update(AVX2 if isa == "avx2" else {})
    if smoke:
        env["KD_SMOKE"] = "1"
    command = [sys.executable, __file__, "--worker", phase, "--isa", isa, "--table", str(results),
               "--settings", json.dumps(settings)] + (["--smoke"] if smoke else [])
    subprocess.run(command, env=env, check=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--report", action="store_true", help="apply the rule to the table, train nothing")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--isa", default="native", help=argparse.SUPPRESS)
    parser.add_argument("--table", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    add_run_options(parser)  # --smoke: a tiny version on the test corpus, written to a temporary folder
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.isa, args.smoke, args.table, args.settings)
        return 0
    folder = output_folder(args, "lm_kd_search")
    results, report_path = folder / RESULTS.name, folder / REPORT.name
    if not args.report:
        trained = in_subprocess("search", "native", cells(args.smoke), args.smoke, results)  # skips the rows it has
        scratch, distilled = choose(read_rows(results), args.smoke)
        for isa in ("native", "avx2"):
            trained |= in_subprocess("confirm", isa, [scratch, distilled], args.smoke, results)
        if not trained:
            say_complete(results, len(read_rows(results)))
    rows = read_rows(results)
    result = report(rows, args.smoke)
    import kd_utils as kd

    text = json.dumps(result, indent=1) + "\n"
    if not report_path.exists() or report_path.read_text(encoding="utf-8") != text:  # unchanged: not rewritten
        with kd.atomic_write(report_path, "w", encoding="utf-8") as file:
            file.write(text)
    print(f"scratch: {result['scratch']['cell']}; distilled: {result['distilled']['cell']}")
    for isa, c in result["confirmation"].items():
        print(f"confirmation {isa}: gain {c['gain_nats']:+.4f} ± {c['half_width']:.4f} nats/char, {c['verdict']}")
    print(f"clear win: {result['clear_win']}; report: {report_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
