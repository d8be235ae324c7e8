"""What the search scripts share: mean ± std over seeds, adding rows to a results CSV, and printing them."""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Sequence
from pathlib import Path

import kd_utils as kd


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Return the mean and the population standard deviation of per-seed values."""
    return statistics.mean(values), statistics.pstdev(values)


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
