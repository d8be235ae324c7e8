"""Run every search in experiments/ with one command: the missing teachers first, then each search, resumably.

    .venv/bin/python experiments/run_all.py                   # everything not yet in experiments/results (make searches)
    .venv/bin/python experiments/run_all.py --only search_dkd # one step (repeat --only for more); --list names them
    .venv/bin/python experiments/run_all.py --smoke           # every step on a tiny budget, into a temporary folder

Each step is its script in a fresh process (as you would run it by hand), in this order:

  teachers               the teacher variants the searches read (experiments/teachers/), trained only when missing
  search_full_label_kd   notebook 03's full-label regime (it chose the ensemble and the recipe the others use)
  headline_robustness    notebook 03's headline under other instruction sets, seed sets and a retrained teacher
  search_feature_regime  notebook 04's hint on the MLP
  search_feature_cnn     notebook 04's CNN student with few images
  search_dkd             notebook 06's decoupled-KD weights (the recipe chosen by search_full_label_kd)
  search_lm_kd           notebook 08's next-token distillation

Every search skips the rows already in its table, so a stopped run resumes where it stopped, and a search whose
declared rows are all there says "already complete" and trains nothing. Every row records the commit, torch
version, thread count and CPU capability it ran with. --smoke runs each search's own --smoke (a few hundred
images, 2 seeds, 1 epoch; the LM search on the test corpus) into one folder (--output, default a new temporary
one), never into experiments/results, with one tiny teacher variant trained there.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEACHERS = HERE / "teachers"
# the teacher variants the searches read: (epochs, shift, seed); the names train_teacher_variant.py gives them
VARIANTS = [(5, 0, 1), (5, 0, 2), (5, 0, 3), (5, 0, 4), (15, 2, 0)]


@dataclass(frozen=True)
class Step:
    name: str
    arguments: list[str] = field(default_factory=list)


STEPS = [Step("teachers"), Step("search_full_label_kd"), Step("headline_robustness"), Step("search_feature_regime"),
         Step("search_feature_cnn"), Step("search_dkd"), Step("search_lm_kd")]


def variant_name(epochs: int, shift: int, seed: int) -> str:
    return f"teacher_e{epochs}_shift{shift}_seed{seed}"


def commands(step: Step, smoke: bool, output: Path | None) -> list[list[str]]:
    """Return the processes a step starts (none for teachers that all exist)."""
    python = [sys.executable]
    smoke_args = ["--smoke", "--output", str(output)] if smoke else []
    if step.name == "teachers":
        script = str(HERE / "train_teacher_variant.py")
        if smoke:  # the shipped variants exist; train one tiny variant to check the script
            return [python + [script, "--epochs", "15", "--shift", "2", "--seed", "0", *smoke_args]]
        return [python + [script, "--epochs", str(e), "--shift", str(s), "--seed", str(seed)]
                for e, s, seed in VARIANTS if not (TEACHERS / f"{variant_name(e, s, seed)}.pt").exists()]
    return [python + [str(HERE / f"{step.name}.py"), *step.arguments, *smoke_args]]


def shown(part: str) -> str:
    """Return a command's part as printed: the interpreter by name, a path in the project relative to it."""
    if part == sys.executable:
        return Path(part).name
    path = Path(part)
    return str(path.relative_to(HERE.parent)) if path.is_absolute() and path.is_relative_to(HERE.parent) else part


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [step.name for step in STEPS]
    parser.add_argument("--only", action="append", choices=names, metavar="NAME",
                        help=f"run only this step (repeatable): {', '.join(names)}")
    parser.add_argument("--smoke", action="store_true", help="every step on a tiny budget, into --output or a new "
                                                             "temporary folder (never experiments/results)")
    parser.add_argument("--output", type=Path, help="with --smoke: the folder for every step's tables")
    parser.add_argument("--list", action="store_true", help="print the steps in order and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(names))
        return 0
    if args.output and not args.smoke:
        parser.error("--output goes with --smoke: the searches themselves write into experiments/results")
    output = None
    if args.smoke:
        output = args.output or Path(tempfile.mkdtemp(prefix="searches_smoke_"))
        if output.resolve() == (HERE / "results").resolve():
            parser.error("--smoke never writes into experiments/results")
        output.mkdir(parents=True, exist_ok=True)
        print(f"smoke run of every search, into {output}", flush=True)
    steps = [step for step in STEPS if not args.only or step.name in args.only]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started, seconds = time.perf_counter(), {}
    for number, step in enumerate(steps, start=1):
        todo = commands(step, args.smoke, output)
        print(f"\n=== [{number}/{len(steps)}] {step.name} ===", flush=True)
        if not todo:
            print("already complete: every teacher variant is in experiments/teachers; nothing to train", flush=True)
        start = time.perf_counter()
        for command in todo:
            print("$ " + " ".join(shown(c) for c in command), flush=True)
            done = subprocess.run(command, env=env, cwd=HERE.parent)
            if done.returncode:
                print(f"\n{step.name} failed (exit {done.returncode}); run the command above to see it again. Rows "
                      "written so far are kept: the next run resumes from them.", flush=True)
                return done.returncode
        seconds[step.name] = time.perf_counter() - start
        print(f"=== {step.name}: {seconds[step.name]:.0f} s (total {time.perf_counter() - started:.0f} s) ===", flush=True)
    print("\n" + ", ".join(f"{name} {s:.0f} s" for name, s in seconds.items()))
    if output:
        print(f"smoke tables in {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
