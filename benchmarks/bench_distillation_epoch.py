"""Benchmark: seconds per epoch for a student trained from scratch, distilled from cached
teacher logits, and distilled from a live teacher, measured in one run on the same data.

    .venv/bin/python benchmarks/bench_distillation_epoch.py [--student cnn mlp] [--epochs 3]

Each student trains with the batch size its notebook uses (CNN 128, MLP 256). The variants
run in rounds (scratch, cached, live, then again), and each reports the median of its epochs,
so that a slow spell of the machine does not land on one variant.

The cached-logit epoch should cost about the same as a scratch epoch (target ratio ≤ 1.10):
once the logits are cached, the teacher costs one forward pass in total, not one per epoch.
"""

from __future__ import annotations

import argparse
import statistics
import time

import kd_utils as kd

STUDENTS = {"cnn": (lambda: kd.StudentCNN(width=8), 128), "mlp": (lambda: kd.StudentMLP(hidden=64), 256)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", nargs="+", choices=sorted(STUDENTS), default=["cnn", "mlp"])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per variant and round; the median epoch is reported")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over the three variants")
    args = parser.parse_args()
    data = kd.load_fashion_mnist()
    teacher, _ = kd.load_or_train_teacher(data)
    start = time.perf_counter()
    teacher_logits = kd.predict_logits(teacher, data.train_x)
    cache_seconds = time.perf_counter() - start
    print(f"{kd.describe_run()}; {len(data.train_y):,} training images")
    print(f"caching the teacher's logits once: {cache_seconds:.1f} s")

    variants = {
        "scratch": {},
        "distilled, cached logits": {"teacher_logits": teacher_logits},
        "distilled, live teacher": {"teacher": teacher},
    }
    for student_name in args.student:
        build, batch_size = STUDENTS[student_name]
        epochs = {label: [] for label in variants}
        for _ in range(args.rounds):
            for label, source in variants.items():
                kd.set_seed(0)
                history = kd.train(build(), data.train_x, data.train_y, epochs=args.epochs, batch_size=batch_size,
                                   seed=0, progress=False, verbose=False, temperature=2.0, alpha=0.5, **source)
                epochs[label] += history.column("seconds")
        seconds = {label: statistics.median(values) for label, values in epochs.items()}
        print(f"\nstudent {student_name} (batch {batch_size}), median of {args.rounds} × {args.epochs} epochs:")
        for label, value in seconds.items():
            print(f"  {label:<28} {value:6.2f} s/epoch")
        print(f"  cached / scratch: {seconds['distilled, cached logits'] / seconds['scratch']:.2f} (target ≤ 1.10)")
        print(f"  live   / scratch: {seconds['distilled, live teacher'] / seconds['scratch']:.2f}", flush=True)


if __name__ == "__main__":
    main()
