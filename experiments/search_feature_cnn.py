"""Notebook 04's CNN student with few images: does a feature term beat logit KD alone when labels are scarce?

Every student is kd.StudentCNN(width=8), trained with kd.train on the same class-balanced labelled subset
(550 images, one subset per seed) for the same number of epochs, with the live teacher of notebook 01:
logit KD alone, and logit KD plus a hint (block2 ↔ block2, 1×1 regressor) or attention transfer at a few
weights β. β is chosen on the validation split; test accuracy only reports. 3 seeds.

    .venv/bin/python experiments/search_feature_cnn.py
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from results_table import mean_std

import kd_utils as kd

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "feature_search_cnn.csv"
SEEDS, PER_CLASS, EPOCHS, BATCH = [0, 1, 2], 55, 60, 64
KD = {"temperature": 2.0, "alpha": 0.5}
METHODS = {"kd": None, "hint β=0.3": ("hint", 0.3), "hint β=1": ("hint", 1.0), "hint β=3": ("hint", 3.0),
           "hint β=10": ("hint", 10.0), "hint β=30": ("hint", 30.0), "hint β=100": ("hint", 100.0),
           "at β=10": ("at", 10.0), "at β=50": ("at", 50.0)}


def term(kind, weight):
    loss = kd.HintLoss(16, 48) if kind == "hint" else kd.AttentionTransferLoss()
    return kd.FeatureTerm(loss, "block2", "block2", weight)


def main() -> None:
    data = kd.load_fashion_mnist(smoke=False)
    teacher = kd.load_or_train_teacher(data, verbose=False)[0]
    val, test = {m: [] for m in METHODS}, {m: [] for m in METHODS}
    start = time.perf_counter()
    for seed in SEEDS:
        subset = kd.labelled_subset(data.train_y, per_class=PER_CLASS, seed=seed)
        x, y = data.train_x[subset], data.train_y[subset]
        for method, feature in METHODS.items():
            kd.set_seed(seed)
            student = kd.StudentCNN(width=8)
            terms = [term(*feature)] if feature else []
            kd.train(student, x, y, teacher=teacher, feature_terms=terms, epochs=EPOCHS, batch_size=BATCH, seed=seed,
                     progress=False, verbose=False, **KD)
            val[method].append(100 * kd.accuracy(student, data.val_x, data.val_y))
            test[method].append(100 * kd.accuracy(student, data.test_x, data.test_y))
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["method", "images", "epochs", "seeds", "val_mean", "val_gain_vs_kd_mean", "val_gain_vs_kd_std",
                         "test_mean", "test_gain_vs_kd_mean", "test_gain_vs_kd_std", "test_gains_vs_kd"])
        for method in METHODS:
            v_gain = [a - b for a, b in zip(val[method], val["kd"])]
            t_gain = [a - b for a, b in zip(test[method], test["kd"])]
            row = [method, len(subset), EPOCHS, " ".join(map(str, SEEDS)), f"{mean_std(val[method])[0]:.2f}",
                   f"{mean_std(v_gain)[0]:+.2f}", f"{mean_std(v_gain)[1]:.2f}",
                   f"{mean_std(test[method])[0]:.2f}", f"{mean_std(t_gain)[0]:+.2f}",
                   f"{mean_std(t_gain)[1]:.2f}", " ".join(f"{g:+.2f}" for g in t_gain)]
            writer.writerow(row)
            print(row)


if __name__ == "__main__":
    main()
