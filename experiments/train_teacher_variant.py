"""Train a TeacherCNN variant (longer schedule, random shifts) for the search behind notebook 03.

    .venv/bin/python experiments/train_teacher_variant.py --epochs 15 --shift 2 --seed 0

Writes experiments/teachers/<name>.pt (kd.save_checkpoint format, with recipe, seed, time and
accuracies in its metadata) and prints one line to quote.
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

import kd_utils as kd

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--shift", type=int, default=2, help="random shift in pixels (0: no augmentation)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    name = args.name or f"teacher_e{args.epochs}_shift{args.shift}_seed{args.seed}"
    data = kd.load_fashion_mnist(smoke=False)
    kd.set_seed(args.seed)
    teacher = kd.TeacherCNN()
    augment = functools.partial(kd.random_shift, max_shift=args.shift) if args.shift else None
    start = time.perf_counter()
    history = kd.train(teacher, data.train_x, data.train_y, val=(data.val_x, data.val_y), epochs=args.epochs,
                       batch_size=128, lr=args.lr, seed=args.seed, augment=augment, name=name, progress=False)
    seconds = time.perf_counter() - start
    metadata = {"recipe": {"epochs": args.epochs, "shift": args.shift, "batch_size": 128, "lr": args.lr},
                "seed": args.seed, "train_seconds": seconds, "val_accuracy": history.final["val_accuracy"],
                "test_accuracy": kd.accuracy(teacher, data.test_x, data.test_y),
                "trained_by": "experiments/train_teacher_variant.py"}
    path = kd.save_checkpoint(teacher, HERE / "teachers" / f"{name}.pt", metadata)
    print(f"{name}: val {metadata['val_accuracy']:.2%}, test {metadata['test_accuracy']:.2%}, "
          f"{seconds:.0f} s -> {kd.relative_path(path)}")


if __name__ == "__main__":
    main()
