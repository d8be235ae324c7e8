"""What the search scripts share: mean ± std over seeds, result rows with their provenance, resuming, smoke runs.

Every row a search writes ends with the same four provenance columns (``PROVENANCE``): the commit it ran on
(``git rev-parse HEAD``, with "-dirty" when the working tree had uncommitted changes, "unknown" outside git), the
torch version, torch's intra-op thread count and the CPU instruction set torch dispatched to
(``torch.backends.cpu.get_cpu_capability()``). Rows written before these columns existed leave them empty: their
values were not recorded and are not guessed.

Every search takes ``--smoke``: the same code on a tiny budget (``smoke_data``: a few hundred images; 2 seeds;
1 epoch), written into ``--output`` or a new temporary folder, never into ``experiments/results`` (refused), with
its checkpoints (a smoke teacher) kept in that folder too.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import math
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import kd_utils as kd

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
PROVENANCE = ["commit", "torch", "threads", "cpu_capability"]
OBJECTIVE_FIELDS = ["temperature", "alpha", "smoothing", "labels", "feature_weight"]
SMOKE_SEEDS = [0, 1]
SMOKE_SIZES = {"train": 200, "val": 100, "test": 100}  # a cut of kd's smoke data: every search in a few seconds


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Return the mean and the sample standard deviation (n − 1) of per-seed values: ``kd.mean_std``.

    The course's one convention, the spread the notebooks print as "±". A single value has no spread: its
    standard deviation is NaN (written "nan"), so a one-seed search still writes its rows instead of failing
    after training.
    """
    if len(values) == 1:
        return float(values[0]), math.nan
    return kd.mean_std(values)


def append_rows(path: Path, fields: Sequence[str], rows: Sequence[dict]) -> None:
    """Add result rows to a CSV, with a header if the file is new (so a search can resume).

    A table written before some of `fields` existed (the provenance columns) is rewritten with them added at the
    end, empty in its old rows, so no cell ever lands under another column. The file is rewritten whole with
    ``kd.atomic_write``: an interrupted search keeps every row written before and never leaves half a row.
    """
    old = read_rows(path)
    header = list(fields)
    if path.exists():
        with path.open(newline="") as file:
            existing = next(csv.reader(file), [])
        header = existing + [f for f in fields if f not in existing]
    text = io.StringIO()
    writer = csv.DictWriter(text, header, restval="")
    writer.writeheader()
    writer.writerows(old)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with kd.atomic_write(path) as file:
        file.write(text.getvalue().encode())


def objective_fields(objective: kd.Objective) -> dict:
    """Return a row's objective as one column per setting (``OBJECTIVE_FIELDS``), beside its ``describe()`` name.

    Readers (notebooks 03 and 04, the recipe tests) filter and read these fields; the name is only displayed.
    """
    return {"temperature": f"{objective.temperature:g}", "alpha": f"{objective.alpha:g}",
            "smoothing": f"{objective.smoothing:g}", "labels": objective.labels,
            "feature_weight": f"{objective.feature_weight:g}"}


def print_rows(rows: Sequence[dict], width: int = 20) -> None:
    """Print each row's objective with its validation mean and gain and its test gain (mean ± std over seeds)."""
    for r in rows:
        print(f"   {r['objective']:<{width}} val {r['val_mean']} (gain {r['val_gain_mean']} ± {r['val_gain_std']}), "
              f"test gain {r['test_gain_mean']} ± {r['test_gain_std']}")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True, check=True).stdout.strip()


def commit() -> str:
    """Return the commit a search runs on, with "-dirty" if tracked files have changed ("unknown" outside git)."""
    try:
        head = _git("rev-parse", "HEAD")
        return head + ("-dirty" if _git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance() -> dict:
    """Return the provenance columns of a result row: commit, torch version, thread count, CPU capability."""
    import torch

    return {"commit": commit(), "torch": str(torch.__version__), "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def read_rows(path: Path) -> list[dict]:
    """Return the rows of a results CSV (none when it does not exist yet)."""
    if not path.exists():
        return []
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


# ----------------------------------------------------------------------------- the options every search shares


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Add --smoke and --output to a search's parser."""
    parser.add_argument("--smoke", action="store_true",
                        help="the same code on a tiny budget (200 training images, 2 seeds, 1 epoch), written to "
                             "--output or a new temporary folder, never to experiments/results")
    parser.add_argument("--output", type=Path, default=None,
                        help="folder for the results table (default: experiments/results; with --smoke a new temporary "
                             "folder); rows already there are skipped")


def output_folder(args: argparse.Namespace, name: str) -> Path:
    """Return where this run writes its table; for --smoke, also switch to smoke mode with checkpoints in that folder."""
    if not args.smoke:
        return Path(args.output) if args.output else RESULTS_DIR
    folder = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix=f"{name}_smoke_"))
    if folder.resolve() == RESULTS_DIR.resolve():
        raise SystemExit("--smoke never writes into experiments/results: give another --output")
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["KD_SMOKE"] = "1"
    # the smoke teachers live with the smoke table, here and in any process this run starts
    os.environ["KD_CHECKPOINT_DIR"] = str(folder / "checkpoints")
    kd.config.CHECKPOINT_DIR = folder / "checkpoints"
    print(f"smoke run: writing into {folder}", flush=True)
    return folder


def load_data(smoke: bool):
    """Return Fashion-MNIST: all of it, or for a smoke run a few hundred images of each split (``SMOKE_SIZES``)."""
    data = kd.load_fashion_mnist(smoke=smoke)
    if not smoke:
        return data
    cut = {f"{split}_{part}": getattr(data, f"{split}_{part}")[:size]
           for split, size in SMOKE_SIZES.items() for part in ("x", "y")}
    return dataclasses.replace(data, **cut)


def smoke_epochs(epochs: int) -> int:
    """Return a smoke run's epochs for a declared row's: about 1/30 of them, at least 1 (10 and 30 -> 1, 60 -> 2)."""
    return max(1, epochs // 30)


def say_complete(path: Path, rows: int) -> None:
    """Print that a search has nothing left to run (its declared rows are all in `path`)."""
    print(f"already complete: every declared row is in {kd.relative_path(path)} ({rows} rows); nothing to run",
          flush=True)
