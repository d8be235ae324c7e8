"""The measured search behind notebook 04's feature regime: where does a feature term beat logit KD alone?

Each row trains, as one kd.MLPCohort, an MLP student from 3 seeds under: logit KD alone, and logit KD
plus a FitNets-style hint (the student's hidden layer, through a learned linear regressor, regresses
the teacher's penultimate features, cached once like its logits) at a few weights β. Every member of
a row sees the same images in the same order for the same epochs; only the loss differs. β is chosen
on the validation split; test accuracy only reports.

Regimes:
  same-images   a class-balanced labelled subset (550 or 5,500 images), nothing else
  transfer      1 % of the labels plus every training image unlabelled (teacher logits and features on all);
                supported by the code, not run yet (see ROWS)
  (all 55,000 labels: not run yet. At about 15 minutes on 2 cores, that row is left for a later search;
  notebook 04's section 8 compares feature terms with many labels for its CNN student.)

    .venv/bin/python experiments/search_feature_regime.py

Rows already in experiments/results/feature_search.csv are skipped, so the search resumes.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import torch
from results_table import append_rows, mean_std

import kd_utils as kd

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "feature_search.csv"
TEACHER_FEATURE = "classifier.3"  # the teacher's 256 penultimate units, after ReLU
WIDTH, SEEDS = 128, [0, 1, 2]
KD = {"alpha": 0.5, "temperature": 2.0}
BETAS = [0.3, 1.0, 3.0]
# regime, labelled images per class (None: all), unlabelled transfer set, epochs, batch size
ROWS = [
    ("same-images", 55, False, 200, 64),
    ("same-images", 550, False, 40, 64),
    # ("transfer", 55, True, 15, 128): 15 members over all 55,000 images with a 256-wide hint ran past 12 minutes
    # on 2 cores without finishing (batched matrix products here use one core); left for a longer search.
]
FIELDS = ["regime", "labelled", "images", "epochs", "batch_size", "objective", "seeds", "val_mean", "val_std",
          "val_gain_vs_kd_mean", "val_gain_vs_kd_std", "test_mean", "test_std", "test_gain_vs_kd_mean",
          "test_gain_vs_kd_std", "test_gains_vs_kd", "test_gain_vs_scratch_mean", "seconds"]



def main() -> None:
    data = kd.load_fashion_mnist(smoke=False)
    teacher = kd.load_or_train_teacher(data, verbose=False)[0]
    all_logits, all_features = kd.predict_logits_and_features(teacher, data.train_x, TEACHER_FEATURE)
    done = set()
    if RESULTS.exists():
        with RESULTS.open() as file:
            done = {(r["regime"], r["labelled"]) for r in csv.DictReader(file)}
    objectives = [kd.SCRATCH, kd.Objective(**KD)] + [kd.Objective(**KD, feature_weight=b) for b in BETAS]
    for regime, per_class, transfer, epochs, batch_size in ROWS:
        labelled_key = str(per_class * kd.NUM_CLASSES if per_class else len(data.train_y))
        if (regime, labelled_key) in done:
            continue
        start = time.perf_counter()
        # one cohort for the row: member (seed, objective); each seed draws its own labelled subset
        members = [(seed, objective) for seed in SEEDS for objective in objectives]
        subsets = labels = None
        if per_class is None:
            labels = data.train_y
        else:
            seed_subset = {seed: kd.labelled_subset(data.train_y, per_class=per_class, seed=seed) for seed in SEEDS}
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
        val = [val_flat[i * k_all:(i + 1) * k_all] for i in range(len(SEEDS))]
        test = [test_flat[i * k_all:(i + 1) * k_all] for i in range(len(SEEDS))]
        rows = []
        for k, objective in enumerate(objectives):
            v = [100 * s[k] for s in val]
            t = [100 * s[k] for s in test]
            v_gain = [100 * (s[k] - s[1]) for s in val]
            t_gain = [100 * (s[k] - s[1]) for s in test]
            rows.append({
                "regime": regime, "labelled": labelled_key, "images": images, "epochs": epochs,
                "batch_size": batch_size, "objective": objective.describe(), "seeds": " ".join(map(str, SEEDS)),
                "val_mean": f"{mean_std(v)[0]:.2f}", "val_std": f"{mean_std(v)[1]:.2f}",
                "val_gain_vs_kd_mean": f"{mean_std(v_gain)[0]:+.2f}", "val_gain_vs_kd_std": f"{mean_std(v_gain)[1]:.2f}",
                "test_mean": f"{mean_std(t)[0]:.2f}", "test_std": f"{mean_std(t)[1]:.2f}",
                "test_gain_vs_kd_mean": f"{mean_std(t_gain)[0]:+.2f}", "test_gain_vs_kd_std": f"{mean_std(t_gain)[1]:.2f}",
                "test_gains_vs_kd": " ".join(f"{g:+.2f}" for g in t_gain),
                "test_gain_vs_scratch_mean": f"{mean_std([100 * (s[k] - s[0]) for s in test])[0]:+.2f}",
                "seconds": f"{time.perf_counter() - start:.0f}",
            })
        append_rows(RESULTS, FIELDS, rows)
        print(f"{regime} {labelled_key} labelled, {epochs} epochs: {time.perf_counter() - start:.0f} s")
        for r in rows:
            print(f"   {r['objective']:<26} val {r['val_mean']} (vs KD {r['val_gain_vs_kd_mean']} ± "
                  f"{r['val_gain_vs_kd_std']}), test {r['test_mean']} (vs KD {r['test_gain_vs_kd_mean']} ± "
                  f"{r['test_gain_vs_kd_std']}, vs scratch {r['test_gain_vs_scratch_mean']})")


if __name__ == "__main__":
    main()
