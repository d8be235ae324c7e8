"""Benchmark: seconds per epoch for a student trained from scratch, distilled from cached
teacher logits, and distilled from a live teacher, measured in one run on the same data.

    .venv/bin/python benchmarks/bench_distillation_epoch.py [--student cnn|mlp] [--epochs 2]

The cached-logit epoch should cost about the same as a scratch epoch (target ratio ≤ 1.10):
once the logits are cached, the teacher costs one forward pass in total, not one per epoch.
"""

from __future__ import annotations

import argparse
import time

import torch

import kd_utils as kd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", choices=["cnn", "mlp"], default="cnn")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per variant; the median epoch is reported")
    args = parser.parse_args()
    data = kd.load_fashion_mnist()
    teacher, _ = kd.load_or_train_teacher(data)
    start = time.perf_counter()
    teacher_logits = kd.cache_teacher_logits(teacher, data.train_x)
    cache_seconds = time.perf_counter() - start
    print(f"{kd.describe_run()}; {len(data.train_y):,} training images; student: {args.student}")
    print(f"caching the teacher's logits once: {cache_seconds:.1f} s")

    variants = {
        "scratch": {},
        "distilled, cached logits": {"teacher_logits": teacher_logits},
        "distilled, live teacher": {"teacher": teacher},
    }
    seconds = {}
    for label, source in variants.items():
        kd.set_seed(0)
        student = kd.StudentCNN(width=8) if args.student == "cnn" else kd.StudentMLP(hidden=64)
        history = kd.train(student, data.train_x, data.train_y, epochs=args.epochs, seed=0, progress=False,
                           verbose=False, temperature=4.0, alpha=0.9, **source)
        seconds[label] = float(torch.tensor(history.column("seconds")).median())
        print(f"{label:<28} {seconds[label]:6.2f} s/epoch", flush=True)
    print(f"cached / scratch: {seconds['distilled, cached logits'] / seconds['scratch']:.2f} (target ≤ 1.10)")
    print(f"live   / scratch: {seconds['distilled, live teacher'] / seconds['scratch']:.2f}")


if __name__ == "__main__":
    main()
