"""Give two committed search tables one column per objective setting, without re-running them.

Why this exists: `full_label_search.csv` and `feature_search.csv` named each row's objective only by its display
name (``kd.Objective.describe()``: "KD T=2 α=0.5", "KD T=2 α=0.5, hint β=1"), so notebooks 03 and 04 filtered and
read hyperparameters by matching and splitting that text. The searches now write ``OBJECTIVE_FIELDS``
(temperature, alpha, smoothing, labels, feature_weight) beside the name; this script fills them in the rows written
before, from each search's own declared objectives (`KD_GRIDS` of search_full_label_kd.py; scratch, notebook 03's
KD and `BETAS` of search_feature_regime.py), matched by name. A name that no declared objective has, or that two
declared objectives with different settings share, stops the script and changes nothing. Every other cell is kept;
the new columns go right after `objective`, where the searches write them. Running it again changes nothing.

    .venv/bin/python experiments/add_objective_columns.py            # fill the columns (atomically)
    .venv/bin/python experiments/add_objective_columns.py --check    # change nothing; exit 1 if a table would change
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import replace

import search_feature_regime
import search_full_label_kd
from results_table import OBJECTIVE_FIELDS, RESULTS_DIR, objective_fields

import kd_utils as kd


def declared() -> dict[str, list[kd.Objective]]:
    """Return each table's declared objectives, as its search builds them."""
    full_label = [kd.losses.SCRATCH] + [o for grid in search_full_label_kd.KD_GRIDS.values() for o in grid]
    chosen = search_feature_regime.CHOSEN_KD
    feature = [kd.losses.SCRATCH, chosen] + [replace(chosen, feature_weight=b) for b in search_feature_regime.BETAS]
    return {search_full_label_kd.TABLE: full_label, search_feature_regime.TABLE: feature}


def filled(text: str, objectives: list[kd.Objective]) -> str:
    """Return the table `text` with OBJECTIVE_FIELDS filled in every row from the objective its name declares."""
    by_name: dict[str, dict] = {}
    for objective in objectives:
        name, fields = objective.describe(), objective_fields(objective)
        if by_name.setdefault(name, fields) != fields:
            raise SystemExit(f"two declared objectives are both called {name!r}: {by_name[name]} and {fields}")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    header = [f for f in rows[0] if f not in OBJECTIVE_FIELDS]
    at = header.index("objective") + 1
    header[at:at] = OBJECTIVE_FIELDS
    unknown = sorted({r["objective"] for r in rows} - set(by_name))
    if unknown:
        raise SystemExit(f"no declared objective is called {', '.join(map(repr, unknown))}: nothing was changed")
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, header)  # "\r\n" line ends, as the searches write
    writer.writeheader()
    for row in rows:
        known = {f: row[f] for f in OBJECTIVE_FIELDS if row.get(f)}
        if known and known != by_name[row["objective"]]:
            raise SystemExit(f"a row called {row['objective']!r} holds {known}, its declaration {by_name[row['objective']]}")
        writer.writerow(row | by_name[row["objective"]])
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table would change")
    args = parser.parse_args(argv)
    changed = []
    for table, objectives in declared().items():
        path = RESULTS_DIR / table
        old = path.read_bytes().decode()
        new = filled(old, objectives)
        if new != old:
            changed.append(table)
            if not args.check:
                with kd.atomic_write(path) as file:
                    file.write(new.encode())
    print(f"{'would change' if args.check else 'changed'}: {', '.join(changed) or 'nothing'}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
