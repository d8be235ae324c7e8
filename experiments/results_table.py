"""What the search scripts share: mean ± std over seeds, adding rows to a results CSV, and printing them."""

from __future__ import annotations

import csv
import io
import math
import subprocess
from collections.abc import Sequence
from pathlib import Path

import kd_utils as kd


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

    The file is rewritten whole with ``kd.atomic_write``: an interrupted search keeps every row written before
    and never leaves half a row.
    """
    text = io.StringIO()
    writer = csv.DictWriter(text, fields)
    if not path.exists():
        writer.writeheader()
    writer.writerows(rows)
    with kd.atomic_write(path) as file:
        file.write((path.read_bytes() if path.exists() else b"") + text.getvalue().encode())


def print_rows(rows: Sequence[dict], width: int = 20) -> None:
    """Print each row's objective with its validation mean and gain and its test gain (mean ± std over seeds)."""
    for r in rows:
        print(f"   {r['objective']:<{width}} val {r['val_mean']} (gain {r['val_gain_mean']} ± {r['val_gain_std']}), "
              f"test gain {r['test_gain_mean']} ± {r['test_gain_std']}")


def commit() -> str:
    """Return the short hash of the commit a search runs on ("unknown" outside git), for its result rows."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def read_rows(path: Path) -> list[dict]:
    """Return the rows of a results CSV (none when it does not exist yet)."""
    if not path.exists():
        return []
    with path.open(newline="") as file:
        return list(csv.DictReader(file))
