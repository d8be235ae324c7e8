"""The measured search behind notebook 04's feature regime: where does a feature term beat logit KD alone?

Each row trains, as one kd.MLPCohort, an MLP student from 3 seeds under: logit KD alone, and logit KD
plus a FitNets-style hint (the student's hidden layer, through a learned linear regressor, regresses
the teacher's penultimate features, cached once like its logits) at a few weights β. Every member of
a row sees the same images in the same order for the same epochs; only the loss differs. β is chosen
on the validation split; test accuracy only reports.

Regimes:
  same-images   a class-balanced labelled subset (550 or 5,500 images), nothing else
  transfer      1 % of the labels plus every training image unlabelled (teacher logits and features on all);
                supported by the code; its row was declared, ran past 12 minutes and was dropped unrun (see ROWS)
  (all 55,000 labels: not run yet. At about 15 minutes on 2 cores, that row is left for a later search;
  notebook 04's section 8 compares feature terms with many labels for its CNN student.)

    .venv/bin/python experiments/search_feature_regime.py
    .venv/bin/python experiments/search_feature_regime.py --smoke    # both rows tiny, into a temporary folder

Rows already in experiments/results/feature_search.csv are skipped, so the search resumes.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
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
    provenance,
    read_rows,
    say_complete,
    smoke_epochs,
)

import kd_utils as kd

HERE = Path(__file__).resolve().parent
TABLE = "feature_search.csv"
RESULTS = HERE / "results" / TABLE
TEACHER_FEATURE = "classifier.3"  # the teacher's 256 penultimate units, after ReLU
WIDTH, SEEDS = 128, [0, 1, 2]
CHOSEN_KD = kd.STUDENT_RECIPES["mlp_kd"].objective  # notebook 03's T and α
BETAS = [0.3, 1.0, 3.0]
# regime, labelled images per class (None: all), unlabelled transfer set, epochs, batch size
ROWS = [
    ("same-images", 55, False, 200, 64),
    ("same-images", 550, False, 40, 64),
    # dropped unrun: ("transfer", 55, True, 15, 128) was declared, ran past 12 minutes on 2 cores and was dropped unrun.
]
FIELDS = ["regime", "labelled", "images", "epochs", "batch_size", "objective", *OBJECTIVE_FIELDS, "seeds", "val_mean", "val_std",
          "val_gain_vs_kd_mean", "val_gain_vs_kd_std", "test_mean", "test_std", "test_gain_vs_kd_mean",
          "test_gain_vs_kd_std", "test_gains_vs_kd", "test_gain_vs_scratch_mean", "seconds", *PROVENANCE]



def declared_rows(smoke: bool) -> list[tuple]:
    """Return ROWS; a smoke run labels 1/100 as many images per class (at least 2: 2 and 5) for 1/30 of the epochs."""
    if not smoke:
        return ROWS
    return [(regime, max(2, per_class // 100) if per_class else None, transfer, smoke_epochs(epochs), batch_size)
            for regime, per_class, transfer, epochs, batch_size in ROWS]


def labelled_key(per_class: int | None, data) -> str:
    return str(per_class * kd.NUM_CLASSES if per_class else len(data.train_y))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_options(parser)
    args = parser.parse_args(argv)
    results = output_folder(args, "feature_search") / TABLE
    seeds = SMOKE_SEEDS if args.smoke else SEEDS
    data = load_data(args.smoke)
    done = {(r["regime"], r["labelled"]) for r in read_rows(results)}
    todo = [row for row in declared_rows(args.smoke) if (row[0], labelled_key(row[1], data)) not in done]
    if not todo:
        say_complete(results, len(read_rows(results)))
        return 0
    teacher = kd.load_or_train_teacher(data, verbose=False)[0]
    all_logits, all_features = kd.predict_logits_and_features(teacher, data.train_x, TEACHER_FEATURE)
    objectives = [kd.losses.SCRATCH, CHOSEN_KD] + [replace(CHOSEN_KD, feature_weight=b) for b in BETAS]
    for number, (regime, per_class, transfer, epochs, batch_size) in enumerate(todo, start=1):
        start = time.perf_counter()
        # one cohort for the row: member (seed, objective); each seed draws its own labelled subset
        members = [(seed, objective) for seed in seeds for objective in objectives]
        subsets = labels = None
        if per_class is None:
            labels = data.train_y
        else:
            seed_subset = {seed: kd.labelled_subset(data.train_y, per_class=per_class, seed=seed) for seed in seeds}
            if transfer:
                labels = torch.full((len(members), len(data.train_y)), kd.IGNORE_LABEL, dtype=torch.long)
                for k, (seed, _) in enumerate(members):
                    labels[k, seed_subset[seed]] = data.train_y[seed_subset[seed]]
            else:
                labels = data.train_y
                subsets = torch.stack([seed_subset[seed] for seed, _ in members])
        cohort = kd.MLPCohort(WIDTH, [seed for seed, _ in members], feature_width=all_features.shape[1])
        kd.train_cohort(cohort, data.train_x, labels, [o for _, o in members], teacher_logits=all_logits,
                        teacher_features=all_features, subsets=subsets, epochs=epochs, batch_size=batch_size,
                        progress=False)
        images = len(data.train_y) if subsets is None else subsets.shape[1]
        k_all = len(objectives)
        val_flat = cohort.accuracies(data.val_x, data.val_y)
        test_flat = cohort.accuracies(data.test_x, data.test_y)
        val = [val_flat[i * k_all:(i + 1) * k_all] for i in range(len(seeds))]
        test = [test_flat[i * k_all:(i + 1) * k_all] for i in range(len(seeds))]
        rows = []
        for k, objective in enumerate(objectives):
            v = [100 * s[k] for s in val]
            t = [100 * s[k] for s in test]
            v_gain = [100 * (s[k] - s[1]) for s in val]
            t_gain = [100 * (s[k] - s[1]) for s in test]
            rows.append({
                "regime": regime, "labelled": labelled_key(per_class, data), "images": images, "epochs": epochs,
                "batch_size": batch_size, "objective": objective.describe(), **objective_fields(objective),
                "seeds": " ".join(map(str, seeds)),
                "val_mean": f"{mean_std(v)[0]:.2f}", "val_std": f"{mean_std(v)[1]:.2f}",
                "val_gain_vs_kd_mean": f"{mean_std(v_gain)[0]:+.2f}", "val_gain_vs_kd_std": f"{mean_std(v_gain)[1]:.2f}",
                "test_mean": f"{mean_std(t)[0]:.2f}", "test_std": f"{mean_std(t)[1]:.2f}",
                "test_gain_vs_kd_mean": f"{mean_std(t_gain)[0]:+.2f}", "test_gain_vs_kd_std": f"{mean_std(t_gain)[1]:.2f}",
                "test_gains_vs_kd": " ".join(f"{g:+.2f}" for g in t_gain),
                "test_gain_vs_scratch_mean": f"{mean_std([100 * (s[k] - s[0]) for s in test])[0]:+.2f}",
                "seconds": f"{time.perf_counter() - start:.0f}", **provenance(),
            })
        append_rows(results, FIELDS, rows)
        print(f"[{number}/{len(todo)}] {regime} {labelled_key(per_class, data)} labelled, {epochs} epochs: "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        for r in rows:
            print(f"   {r['objective']:<26} val {r['val_mean']} (vs KD {r['val_gain_vs_kd_mean']} ± "
                  f"{r['val_gain_vs_kd_std']}), test {r['test_mean']} (vs KD {r['test_gain_vs_kd_mean']} ± "
                  f"{r['test_gain_vs_kd_std']}, vs scratch {r['test_gain_vs_scratch_mean']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
