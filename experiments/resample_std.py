"""Turn the population standard deviations in the committed search tables into sample ones, without re-running.

Why this exists: until results_table.mean_std was fixed it returned the *population* standard deviation
(statistics.pstdev, n in the denominator), so every std column the searches wrote (val_std, val_gain_std,
test_gain_vs_kd_std, ...) was smaller than the course's one convention, the *sample* standard deviation
(n − 1, kd.stats.sample_std), that notebooks 03, 04 and 06 print as "±". Re-running the searches takes hours, so this
script recomputes those columns from what each row already holds:

- from the row's per-seed values (val_gains, test_gains, test_gains_vs_kd) when they are stored with at least
  as many decimals as the std (they are: 2 and 2), with kd.stats.sample_std. Used for those columns because their
  rounding error is no larger than that of the converted value, and the table then agrees with itself: the std
  a reader recomputes from the printed per-seed gains is the printed std;
- otherwise (val_std, test_std, val_gain_std of full_label_search, the *_vs_kd_std of validation: no per-seed
  values stored) by converting the stored population std exactly, s = σ·sqrt(n / (n − 1)), n the number of
  seeds in the row's `seeds` column, written with one decimal more than the stored σ. Multiplying every std of a
  table by the same factor cannot change which row has the largest mean/std (notebook 04's CNN rule), but
  rounding the products to 2 decimals again can, and did: hint β=10 overtook β=30 by 4.794 to 4.784 through
  rounding alone. The conversion would also be used where per-seed values are rounded more coarsely than the std.

A row with a single seed keeps its cell (the population std of one value is 0; the sample std is undefined);
no committed row has one. Every other byte of a table is kept: its column order, the quoting, the line ends,
and the number of decimals of each std cell.

Re-runnable: the population stds are always read from POPULATION_COMMIT (the last commit whose tables were
written with pstdev), so running the script again gives the same bytes. A row is converted only when all its
other cells equal the row at the same position in that commit; rows appended later, by the fixed searches,
already hold sample stds and are left alone. It needs the git history (not a shallow clone).

    .venv/bin/python experiments/resample_std.py            # rewrite the tables (atomically), print what changed
    .venv/bin/python experiments/resample_std.py --check    # change nothing; exit 1 if a table would change
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import subprocess
import sys
from pathlib import Path

import kd_utils as kd

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
POPULATION_COMMIT = "7ab974752237e559058ba80eb0d8da9afc7ab627"
# table -> {std column: the per-seed column of the same row it summarises, or None when the row stores none}
TABLES = {
    "full_label_search.csv": {"val_std": None, "val_gain_std": None, "test_std": None, "test_gain_std": "test_gains"},
    "dkd_search.csv": {"val_std": None, "val_gain_std": "val_gains", "test_std": None, "test_gain_std": "test_gains"},
    "feature_search.csv": {"val_std": None, "val_gain_vs_kd_std": None, "test_std": None,
                           "test_gain_vs_kd_std": "test_gains_vs_kd"},
    "feature_search_cnn.csv": {"val_gain_vs_kd_std": None, "test_gain_vs_kd_std": "test_gains_vs_kd"},
}


def decimals(cell: str) -> int:
    return len(cell.split(".")[1]) if "." in cell else 0


def parse(text: str) -> list[list[str]]:
    """Return the CSV's rows, after checking that writing them back gives the same text (so nothing else moves)."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if render(rows) != text:
        raise SystemExit("this table does not round-trip through the csv module byte for byte; not touching it")
    return rows


def render(rows: list[list[str]]) -> str:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def population_table(name: str) -> list[list[str]]:
    """Return the table `name` as POPULATION_COMMIT holds it (its stds are population stds)."""
    path = (RESULTS / name).relative_to(kd.PROJECT_ROOT).as_posix()
    try:
        text = subprocess.run(["git", "show", f"{POPULATION_COMMIT}:{path}"], cwd=kd.PROJECT_ROOT, capture_output=True,
                              check=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError) as error:
        raise SystemExit(f"cannot read {path} at {POPULATION_COMMIT[:7]} from git ({error}): this script needs the "
                         "history (not a shallow clone)") from error
    return parse(text)


def sample_std_cell(row: dict, std_column: str, per_seed_column: str | None) -> str:
    """Return the sample std of the row's seeds, as text with as many decimals as its population std cell."""
    cell, n = row[std_column], len(row["seeds"].split())
    if n < 2:
        return cell  # one seed: no spread to convert
    places = decimals(cell)
    if per_seed_column is not None and decimals(row[per_seed_column].split()[0]) >= places:
        values = [float(v) for v in row[per_seed_column].split()]
        if len(values) != n:
            raise SystemExit(f"{per_seed_column} holds {len(values)} values for {n} seeds in row {row}")
        std = kd.stats.sample_std(values)
    else:  # one more decimal than the source: a rescale must not reorder a ratio, and rounding it again can
        std, places = float(cell) * math.sqrt(n / (n - 1)), places + 1
    return f"{std:.{places}f}"


def resample(name: str) -> tuple[str, str, dict[str, list[float]]]:
    """Return the table's current text, its text with sample stds, and the changes of each std column."""
    path = RESULTS / name
    text = path.read_bytes().decode()
    rows, old = parse(text), population_table(name)
    header = rows[0]
    if not set(old[0]) <= set(header):  # columns added later (provenance, objective fields) are not compared
        raise SystemExit(f"{name}: it lacks columns it had at {POPULATION_COMMIT[:7]}")
    std_columns = TABLES[name]
    unmapped = [c for c in header if c.endswith("_std") and c not in std_columns]
    if unmapped:
        raise SystemExit(f"{name}: std columns {unmapped} have no rule here; add them to TABLES")
    keep = [(header.index(c), i) for i, c in enumerate(old[0]) if c not in std_columns]
    changes = {c: [] for c in std_columns}
    for position, values in enumerate(rows[1:], start=1):
        if position >= len(old) or [values[i] for i, _ in keep] != [old[position][j] for _, j in keep]:
            continue  # written after the fix: already a sample std
        population = dict(zip(old[0], old[position]))
        for column, per_seed in std_columns.items():
            index = header.index(column)
            values[index] = sample_std_cell(population, column, per_seed)
            changes[column].append(float(values[index]) - float(population[column]))
    return text, render(rows), changes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table would change")
    args = parser.parse_args()
    stale = []
    for name in TABLES:
        before, after, changes = resample(name)
        for column, deltas in changes.items():
            if deltas:
                print(f"{name:<24}{column:<21}{len(deltas):>3} rows converted, change {min(deltas):+.2f} to "
                      f"{max(deltas):+.2f}")
        if after != before:
            stale.append(name)
            if not args.check:
                with kd.atomic_write(RESULTS / name) as file:
                    file.write(after.encode())
    print(("would rewrite: " if args.check else "rewrote: ") + (", ".join(stale) or "nothing, the tables hold sample stds"))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
