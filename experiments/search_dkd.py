"""The measured search behind notebook 06's decoupled-KD student: which TCKD and NCKD weights, chosen on validation?

Decoupled KD (Zhao et al., CVPR 2022) splits the KD loss into TCKD (is it the target class?) and
NCKD (how the rest is shared among the wrong classes): KD = TCKD + (1 − p^t_y)·NCKD, and DKD trains
with α·TCKD + β·NCKD instead. Every row trains, as one kd.MLPCohort, notebook 03's regime
(kd.STUDENT_RECIPES["mlp_kd"]: MLP(128), 30 epochs, batch 128, the teacher ensemble, T = 2, the soft
term's share 0.5) from 3 seeds, under each objective of the row and from scratch. Only the soft term
differs: KD, TCKD alone, NCKD alone, or DKD with the paper's α (TCKD weight) and β > 1 (NCKD weight).
Choices are made on the **validation** split; test accuracy is recorded for the report only.

    .venv/bin/python experiments/search_dkd.py [--only GROUP] [--seeds 0 1 2] [--epochs N]
    .venv/bin/python experiments/search_dkd.py --smoke    # two groups tiny, into a temporary folder

Rows already in experiments/results/dkd_search.csv are skipped, so the search resumes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from results_table import (
    PROVENANCE,
    SMOKE_SEEDS,
    add_run_options,
    append_rows,
    load_data,
    mean_std,
    output_folder,
    print_rows,
    provenance,
    read_rows,
    say_complete,
)

import kd_utils as kd
from kd_utils.cohort import MLPCohort, train_cohort
from kd_utils.losses import SCRATCH, Objective

HERE = Path(__file__).resolve().parent
TABLE = "dkd_search.csv"
RESULTS = HERE / "results" / TABLE
RECIPE = kd.STUDENT_RECIPES["mlp_kd"]
TEMPERATURE, SHARE = RECIPE.objective.temperature, RECIPE.objective.alpha


def decoupled(tckd_weight: float, nckd_weight: float) -> Objective:
    return Objective(alpha=SHARE, temperature=TEMPERATURE, tckd_weight=tckd_weight, nckd_weight=nckd_weight)


# group -> the objectives trained beside the scratch student in that row
ROWS = {
    "dkd_alpha1": [decoupled(1.0, beta) for beta in (2.0, 4.0, 8.0)],
    "dkd_alpha0.5": [decoupled(0.5, beta) for beta in (2.0, 4.0, 8.0)],
    "parts": [Objective(alpha=SHARE, temperature=TEMPERATURE), decoupled(1.0, 0.0), decoupled(0.0, 1.0)],
    # added after the rows above: a larger β hurt and a larger α helped, so β just above 1 and α = 2
    "dkd_near_kd": [decoupled(1.0, 1.5), decoupled(2.0, 1.5), decoupled(2.0, 2.0)],
}
FIELDS = ["group", "width", "epochs", "batch_size", "teacher", "teacher_test_accuracy", "objective", "tckd_weight",
          "nckd_weight", "seeds", "val_mean", "val_std", "val_gain_mean", "val_gain_std", "val_gains", "test_mean",
          "test_std", "test_gain_mean", "test_gain_std", "test_gains", "seconds", "threads", "commit", "torch",
          "cpu_capability"]  # "threads" came first, and stays where the committed table has it
SMOKE_GROUPS = ["dkd_alpha1", "parts"]  # DKD at several β, and KD beside TCKD and NCKD alone
assert sorted(FIELDS[-4:]) == sorted(PROVENANCE)


def done_groups(path: Path) -> set[str]:
    return {row["group"] for row in read_rows(path)}


def run_row(group: str, data, seeds: list[int], epochs: int, teacher_logits, teacher_test: float) -> list[dict]:
    objectives = [SCRATCH] + ROWS[group]
    member_objectives = [o for o in objectives for _ in seeds]
    cohort = MLPCohort(RECIPE.width, [s for _ in objectives for s in seeds])
    result = train_cohort(cohort, data.train_x, data.train_y, member_objectives, teacher_logits=teacher_logits,
                          val=(data.val_x, data.val_y), epochs=epochs, batch_size=RECIPE.batch_size, name=group)
    val = [100 * a for a in result.final_val_accuracy]
    test = [100 * a for a in cohort.accuracies(data.test_x, data.test_y)]
    k = len(seeds)
    rows = []
    for i, objective in enumerate(objectives):
        v, t = val[i * k:(i + 1) * k], test[i * k:(i + 1) * k]
        v_gain = [a - b for a, b in zip(v, val[:k])]
        t_gain = [a - b for a, b in zip(t, test[:k])]
        rows.append({
            "group": group, "width": RECIPE.width, "epochs": epochs, "batch_size": RECIPE.batch_size,
            "teacher": RECIPE.teacher, "teacher_test_accuracy": f"{100 * teacher_test:.2f}",
            "objective": objective.describe(),
            "tckd_weight": "" if objective.tckd_weight is None else f"{objective.tckd_weight:g}",
            "nckd_weight": "" if objective.nckd_weight is None else f"{objective.nckd_weight:g}",
            "seeds": " ".join(map(str, seeds)),
            "val_mean": f"{mean_std(v)[0]:.2f}", "val_std": f"{mean_std(v)[1]:.2f}",
            "val_gain_mean": f"{mean_std(v_gain)[0]:+.2f}", "val_gain_std": f"{mean_std(v_gain)[1]:.2f}",
            "val_gains": " ".join(f"{g:+.2f}" for g in v_gain),
            "test_mean": f"{mean_std(t)[0]:.2f}", "test_std": f"{mean_std(t)[1]:.2f}",
            "test_gain_mean": f"{mean_std(t_gain)[0]:+.2f}", "test_gain_std": f"{mean_std(t_gain)[1]:.2f}",
            "test_gains": " ".join(f"{g:+.2f}" for g in t_gain), "seconds": f"{result.seconds:.0f}",
            **provenance(),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help=f"groups to run (default: all of {', '.join(ROWS)})")
    parser.add_argument("--seeds", nargs="*", type=int, default=None, help="default: 0 1 2 (smoke: 0 1)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per student (default: the recipe's; smoke: 1)")
    add_run_options(parser)
    args = parser.parse_args(argv)
    results = output_folder(args, "dkd_search") / TABLE
    seeds = args.seeds or (SMOKE_SEEDS if args.smoke else [0, 1, 2])
    epochs = args.epochs or (1 if args.smoke else RECIPE.epochs)
    done = done_groups(results)
    todo = [g for g in (SMOKE_GROUPS if args.smoke else ROWS) if not (args.only and g not in args.only) and g not in done]
    if not todo:
        say_complete(results, len(read_rows(results)))
        return 0
    data = load_data(args.smoke)
    kd.load_or_train_teacher(data, verbose=False)  # the first member, trained on this run's images if missing
    ensemble, _ = kd.load_teacher_ensemble(verbose=False)
    teacher_logits = kd.predict_logits(ensemble, data.train_x)
    teacher_test = kd.accuracy(ensemble, data.test_x, data.test_y)
    for number, group in enumerate(todo, start=1):
        start = time.perf_counter()
        rows = run_row(group, data, seeds, epochs, teacher_logits, teacher_test)
        append_rows(results, FIELDS, rows)
        print(f"[{number}/{len(todo)}] {group}: {time.perf_counter() - start:.0f} s", flush=True)
        print_rows(rows, width=34)
    return 0


if __name__ == "__main__":
    sys.exit(main())
