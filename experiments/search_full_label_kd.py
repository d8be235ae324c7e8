"""The measured search behind notebook 03's full-label regime: where does logit distillation win?

Every row trains, as one kd.MLPCohort, the same MLP student from 3 seeds (initial weights and
data order) under each objective: from scratch, and distilled with a few (T, α). Students of
one row share the teacher, the transfer set, the schedule and the batch size: only the loss
differs, so a row's gains are paired per seed. Choices are made on the **validation** split;
test accuracy is recorded for the report only.

The levers (one per group of rows; see experiments/README.md for the table):
  width     the student's capacity: MLP(64 … 512)
  schedule  the number of epochs ("patient" teaching, Beyer et al. 2022)
  teacher   the teacher's strength: 01's teacher, one trained longer with random shifts, an ensemble
  transfer  "consistent" teaching: K randomly shifted copies of every image, the teacher's logits
            cached on each copy; the scratch twin trains on the same copies with their labels

    .venv/bin/python experiments/search_full_label_kd.py [--only GROUP] [--seeds 0 1 2]
    .venv/bin/python experiments/search_full_label_kd.py --smoke    # every row tiny, into a temporary folder

Rows already in experiments/results/full_label_search.csv are skipped, so the search resumes. It needs the
teachers of experiments/teachers/ (shipped; experiments/run_all.py trains any that is missing first).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from results_table import (
    OBJECTIVE_FIELDS,
    PROVENANCE,
    SMOKE_SEEDS,
    add_run_options,
    append_rows,
    load_data,
    mean_std,
    objective_fields,
    output_folder,
    print_rows,
    provenance,
    read_rows,
    say_complete,
    smoke_epochs,
)

import kd_utils as kd
from kd_utils.cohort import MLPCohort, train_cohort
from kd_utils.losses import SCRATCH, Objective

HERE = Path(__file__).resolve().parent
TABLE = "full_label_search.csv"
RESULTS = HERE / "results" / TABLE
TEACHERS = {
    "base": None,  # notebook 01's teacher (checkpoints/full/teacher.pt, trained if missing)
    "strong": HERE / "teachers" / "teacher_e15_shift2_seed0.pt",
}
ENSEMBLES = {"ensemble": [1, 2], "ensemble5": [1, 2, 3, 4]}  # seeds of the members beside 01's teacher (seed 0)
KD_GRIDS = {  # the objectives trained beside the scratch student in a row
    "first": [Objective(alpha=a, temperature=t) for t, a in [(2.0, 0.5), (4.0, 0.5), (4.0, 0.9)]],
    "low_T": [Objective(alpha=a, temperature=t) for t, a in [(1.0, 0.5), (2.0, 0.3), (2.0, 0.7), (3.0, 0.5)]],
    # the controls of notebook 03: label smoothing (ε chosen here, on validation) and the teacher's hard labels
    "controls": [Objective(smoothing=e) for e in (0.05, 0.1, 0.2)] + [Objective(labels="teacher")],
}

# group, width, epochs, batch size, teacher, shifted copies in the transfer set[, KD grid (default "first")]
ROWS = [
    ("width", 64, 30, 128, "base", 0),
    ("width", 128, 30, 128, "base", 0),
    ("width", 256, 30, 128, "base", 0),
    ("teacher", 128, 30, 128, "strong", 0),
    ("teacher", 128, 30, 128, "ensemble", 0),
    ("transfer", 128, 10, 128, "base", 3),
    ("schedule", 128, 10, 128, "base", 0),
    ("grid", 128, 30, 128, "ensemble", 0, "low_T"),
    ("teacher", 128, 30, 128, "ensemble5", 0),
    ("controls", 128, 30, 128, "ensemble", 0, "controls"),
    ("schedule", 128, 60, 128, "base", 0),
    ("grid", 128, 30, 128, "ensemble5", 0, "low_T"),
    ("transfer", 128, 10, 128, "strong", 3),
]
FIELDS = ["group", "width", "epochs", "batch_size", "teacher", "teacher_test_accuracy", "copies", "objective",
          *OBJECTIVE_FIELDS, "seeds", "val_mean", "val_std", "val_gain_mean", "val_gain_std", "test_mean", "test_std",
          "test_gain_mean", "test_gain_std", "test_gains", "seconds", *PROVENANCE]


def load_teacher(name: str, data) -> torch.nn.Module:
    if name == "base":
        return kd.load_or_train_teacher(data, verbose=False)[0]
    if name in ENSEMBLES:
        members = [kd.load_or_train_teacher(data, verbose=False)[0]]
        members += [kd.load_checkpoint(HERE / "teachers" / f"teacher_e5_shift0_seed{seed}.pt")[0].eval()
                    for seed in ENSEMBLES[name]]
        return kd.models.Ensemble(members)
    return kd.load_checkpoint(TEACHERS[name])[0].eval()


def done_rows(path: Path) -> set[tuple]:
    return {(r["group"], int(r["width"]), int(r["epochs"]), int(r["batch_size"]), r["teacher"], int(r["copies"]))
            for r in read_rows(path)}


SMOKE_ROWS = [5, 9]  # one row per code path: one teacher on shifted copies, an ensemble with the controls


def declared_rows(smoke: bool) -> list[tuple]:
    """Return ROWS; a smoke run trains SMOKE_ROWS for about 1/30 of their epochs (smoke_epochs)."""
    if not smoke:
        return ROWS
    return [(*ROWS[i][:2], smoke_epochs(ROWS[i][2]), *ROWS[i][3:]) for i in SMOKE_ROWS]


def run_row(row, data, seeds, teachers_cache) -> list[dict]:
    group, width, epochs, batch_size, teacher_name, copies = row[:6]
    grid = row[6] if len(row) > 6 else "first"
    if teacher_name not in teachers_cache:
        teachers_cache[teacher_name] = load_teacher(teacher_name, data)
    teacher = teachers_cache[teacher_name]
    train_x, train_y = data.train_x, data.train_y
    if copies:
        generator = torch.Generator().manual_seed(1234)
        train_x = torch.cat([kd.data.random_shift(data.train_x, 2, generator) for _ in range(copies)])
        train_y = data.train_y.repeat(copies)
    teacher_logits = kd.predict_logits(teacher, train_x)
    objectives = [SCRATCH] + KD_GRIDS[grid]
    member_objectives = [o for o in objectives for _ in seeds]
    member_seeds = [s for _ in objectives for s in seeds]
    cohort = MLPCohort(width, member_seeds)
    result = train_cohort(cohort, train_x, train_y, member_objectives, teacher_logits=teacher_logits,
                          val=(data.val_x, data.val_y), epochs=epochs, batch_size=batch_size, progress=False)
    val = result.final_val_accuracy
    test = cohort.accuracies(data.test_x, data.test_y)
    teacher_test = kd.accuracy(teacher, data.test_x, data.test_y)
    k = len(seeds)
    rows = []
    for i, objective in enumerate(objectives):
        v = [100 * a for a in val[i * k:(i + 1) * k]]
        t = [100 * a for a in test[i * k:(i + 1) * k]]
        v_gain = [a - 100 * b for a, b in zip(v, val[:k])]
        t_gain = [a - 100 * b for a, b in zip(t, test[:k])]
        rows.append({
            "group": group, "width": width, "epochs": epochs, "batch_size": batch_size, "teacher": teacher_name,
            "teacher_test_accuracy": f"{100 * teacher_test:.2f}", "copies": copies, "objective": objective.describe(),
            **objective_fields(objective), "seeds": " ".join(map(str, seeds)),
            "val_mean": f"{mean_std(v)[0]:.2f}", "val_std": f"{mean_std(v)[1]:.2f}",
            "val_gain_mean": f"{mean_std(v_gain)[0]:+.2f}", "val_gain_std": f"{mean_std(v_gain)[1]:.2f}",
            "test_mean": f"{mean_std(t)[0]:.2f}", "test_std": f"{mean_std(t)[1]:.2f}",
            "test_gain_mean": f"{mean_std(t_gain)[0]:+.2f}", "test_gain_std": f"{mean_std(t_gain)[1]:.2f}",
            "test_gains": " ".join(f"{g:+.2f}" for g in t_gain), "seconds": f"{result.seconds:.0f}", **provenance(),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="groups to run (default: all)")
    parser.add_argument("--seeds", nargs="*", type=int, default=None, help="default: 0 1 2 (smoke: 0 1)")
    add_run_options(parser)
    args = parser.parse_args(argv)
    results = output_folder(args, "full_label_search") / TABLE
    seeds = args.seeds or (SMOKE_SEEDS if args.smoke else [0, 1, 2])
    done = done_rows(results)
    todo = [row for row in declared_rows(args.smoke) if not (args.only and row[0] not in args.only) and row[:6] not in done]
    if not todo:
        say_complete(results, len(read_rows(results)))
        return 0
    data, teachers_cache = load_data(args.smoke), {}
    for number, row in enumerate(todo, start=1):
        start = time.perf_counter()
        rows = run_row(row, data, seeds, teachers_cache)
        append_rows(results, FIELDS, rows)
        print(f"[{number}/{len(todo)}] {row}: {time.perf_counter() - start:.0f} s", flush=True)
        print_rows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
