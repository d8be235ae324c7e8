"""Train a TeacherCNN variant (longer schedule, random shifts) for the search behind notebook 03.

    .venv/bin/python experiments/train_teacher_variant.py --epochs 15 --shift 2 --seed 0
    .venv/bin/python experiments/train_teacher_variant.py --smoke    # 1 epoch on a few hundred images, to a temp folder

Writes experiments/teachers/<name>.pt (kd.save_checkpoint format, with recipe, seed, time, accuracies and the
provenance of the run in its metadata) and prints one line to quote. A teacher already there is kept: nothing is
trained (--retrain trains it again).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

from results_table import add_run_options, load_data, output_folder, provenance

import kd_utils as kd

HERE = Path(__file__).resolve().parent
TEACHERS = HERE / "teachers"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--shift", type=int, default=2, help="random shift in pixels (0: no augmentation)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--name", default=None)
    parser.add_argument("--retrain", action="store_true", help="train even if the teacher's file exists")
    add_run_options(parser)
    args = parser.parse_args(argv)
    name = args.name or f"teacher_e{args.epochs}_shift{args.shift}_seed{args.seed}"
    folder = output_folder(args, "teacher_variant") / "teachers" if args.smoke else (args.output or TEACHERS)
    path = Path(folder) / f"{name}.pt"
    if path.exists() and not args.retrain:
        print(f"already complete: {kd.relative_path(path)} exists; nothing to train (--retrain to train it again)")
        return 0
    epochs = 1 if args.smoke else args.epochs
    data = load_data(args.smoke)
    kd.set_seed(args.seed)
    teacher = kd.TeacherCNN()
    augment = functools.partial(kd.data.random_shift, max_shift=args.shift) if args.shift else None
    start = time.perf_counter()
    history = kd.train(teacher, data.train_x, data.train_y, val=(data.val_x, data.val_y), epochs=epochs,
                       batch_size=128, lr=args.lr, seed=args.seed, augment=augment, name=name, progress=False)
    seconds = time.perf_counter() - start
    metadata = {"recipe": {"epochs": epochs, "shift": args.shift, "batch_size": 128, "lr": args.lr},
                "seed": args.seed, "train_seconds": seconds, "val_accuracy": history.final["val_accuracy"],
                "test_accuracy": kd.accuracy(teacher, data.test_x, data.test_y),
                "trained_by": "experiments/train_teacher_variant.py" + (" --smoke" if args.smoke else ""),
                **provenance()}
    kd.save_checkpoint(teacher, path, metadata)
    print(f"{name}: val {metadata['val_accuracy']:.2%}, test {metadata['test_accuracy']:.2%}, "
          f"{seconds:.0f} s -> {kd.relative_path(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
