"""What the search scripts share: mean ± std over seeds, and appending rows to a results CSV."""

from __future__ import annotations

import csv
import statistics
from collections.abc import Sequence
from pathlib import Path


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Return the mean and the population standard deviation of per-seed values."""
    return statistics.mean(values), statistics.pstdev(values)


def append_rows(path: Path, fields: Sequence[str], rows: Sequence[dict]) -> None:
    """Append result rows to a CSV, writing the header first if the file is new (so a search can resume)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new_file = not path.exists()
    with path.open("a", newline="") as file:
        writer = csv.DictWriter(file, fields)
        if new_file:
            writer.writeheader()
        writer.writerows(rows)
