"""Trial: papermill (PyPI) against scripts/run_notebooks.py's hand-written ``execute()`` (nbclient + nbconvert).

    .venv/bin/pip install --target /tmp/papermill papermill      # outside the course venv; requirements.txt unchanged
    PYTHONPATH=/tmp/papermill .venv/bin/python benchmarks/trial_papermill.py [--notebook 02] [--timeout 1800]

Both run a temporary copy of one course notebook (02_temperature_scaling by default, about 10 s of cells) twice, in
alternating order, in full mode with text progress bars (KD_SMOKE=0, KD_PROGRESS=text, as run_notebooks sets them):
papermill with ``cwd=notebooks/`` and its output written to a temporary file, run_notebooks' ``execute()`` (imported
from the script, save=True) on its own temporary copy. Nothing in notebooks/ is written. kd_utils finds its data and
checkpoints through absolute paths, so the working folder does not change what a notebook computes.

It prints, for each library:
  * wall time of each run;
  * how noisy a re-run is: the cells (and notebook metadata keys) that differ between its two consecutive runs,
    and the +/- lines of their unified diff (what `git diff` would show after `make run`);
  * the metadata it adds to the stored notebook;
  * whether a text progress bar (a tiny extra notebook, tqdm writing carriage returns to stdout) is stored as one
    stream output with its carriage-return updates reduced to the last state;
  * lines of code: run_notebooks' ``execute()`` against the papermill function that stores the same notebook;
and a conclusion computed from those numbers.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib.metadata
import importlib.util
import inspect
import json
import os
import shutil
import sysconfig
import tempfile
import textwrap
import time
from pathlib import Path

import nbformat
from nbconvert.preprocessors import CoalesceStreamsPreprocessor

try:
    import papermill
except ImportError as error:  # kept out of the course venv on purpose
    raise SystemExit("papermill is not importable: .venv/bin/pip install --target /tmp/papermill papermill, "
                     "then run with PYTHONPATH=/tmp/papermill") from error

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

_spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "scripts" / "run_notebooks.py")
run_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_notebooks)

PROGRESS_CELL = """\
import sys, time
from tqdm import tqdm
for _ in tqdm(range(60), desc="epoch", file=sys.stdout, mininterval=0, ncols=100):
    time.sleep(0.02)
print("done")
"""


def papermill_execute(path: Path, output: Path, timeout: int) -> float:
    """The straight swap: papermill runs `path` from notebooks/ and writes `output`; returns its own duration."""
    papermill.execute_notebook(str(path), str(output), cwd=str(NOTEBOOKS), kernel_name="python3",
                               progress_bar=False, execution_timeout=timeout)
    return nbformat.read(output, as_version=4).metadata.papermill.duration


def strip_papermill(notebook):
    """Drop papermill's and nbclient's timestamps and coalesce stream outputs, as run_notebooks stores a notebook."""
    notebook.metadata.pop("papermill", None)
    for cell in notebook.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    notebook, _ = CoalesceStreamsPreprocessor().preprocess(notebook, {})
    return notebook


def papermill_execute_clean(path: Path, output: Path, timeout: int) -> float:
    """papermill, then what it takes to store the notebook run_notebooks stores."""
    seconds = papermill_execute(path, output, timeout)
    nbformat.write(strip_papermill(nbformat.read(output, as_version=4)), output)
    return seconds


def clean(notebook):
    """strip_papermill on a copy of an executed notebook: the clean-up's effect on a re-run, without running again."""
    return strip_papermill(nbformat.from_dict(json.loads(json.dumps(notebook))))


def code_lines(function) -> int:
    """Lines of a function's body that are code: no docstring, blank lines or comment-only lines."""
    source = textwrap.dedent(inspect.getsource(function))
    body = ast.parse(source).body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        first = body[0].end_lineno
    else:
        first = body[0].lineno - 1
    lines = source.splitlines()[first:]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def diff_lines(first, second) -> int:
    """+/- lines of a unified diff between two JSON-able values written as nbformat writes a notebook."""
    a, b = (json.dumps(x, indent=1, sort_keys=True, ensure_ascii=False).splitlines() for x in (first, second))
    return sum(1 for line in difflib.unified_diff(a, b, lineterm="", n=0) if line[:1] in "+-" and line[:3] not in ("+++", "---"))


def noise(first, second) -> dict:
    """How two executions of the same notebook differ, as a re-run's git diff would show it."""
    cells = [i for i, (a, b) in enumerate(zip(first.cells, second.cells))
             if a.get("outputs") != b.get("outputs") or a.metadata != b.metadata
             or a.get("execution_count") != b.get("execution_count")]
    keys = sorted(k for k in set(first.metadata) | set(second.metadata) if first.metadata.get(k) != second.metadata.get(k))
    cell_lines, metadata_lines = diff_lines(first.cells, second.cells), diff_lines(first.metadata, second.metadata)
    return {"cells": len(cells), "which": cells, "metadata_keys": keys, "cell_lines": cell_lines,
            "metadata_lines": metadata_lines, "diff_lines": cell_lines + metadata_lines}


def extra_packages() -> list[str]:
    """Distributions papermill's install brings that the course venv does not already have."""
    def names(folder):
        return {dist.metadata["Name"].lower().replace("_", "-") for dist in importlib.metadata.distributions(path=[folder])}

    return sorted(names(str(Path(papermill.__file__).parent.parent)) - names(sysconfig.get_paths()["purelib"]))


def added_metadata(notebook, reference) -> dict:
    """Metadata keys a notebook carries that the reference execution does not (notebook level, and cells')."""
    reference_keys = {k for cell in reference.cells for k in cell.metadata}
    cell_keys = sorted({k for cell in notebook.cells for k in cell.metadata} - reference_keys)
    return {"notebook": sorted(set(notebook.metadata) - set(reference.metadata)), "cells": cell_keys,
            "cells_with_them": sum(1 for cell in notebook.cells if any(k in cell.metadata for k in cell_keys))}


def progress_storage(notebook) -> dict:
    """The progress-bar cell as stored: how many stream outputs, and how many carriage returns are left in them."""
    outputs = [o for o in notebook.cells[0].outputs if o.output_type == "stream"]
    text = "".join(o.text for o in outputs)
    return {"stream_outputs": len(outputs), "carriage_returns": text.count("\r"), "chars": len(text),
            "coalesced": len(outputs) == 1 and "\r" not in text}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebook", default="02", help="number prefix of the course notebook to run")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed for one cell")
    args = parser.parse_args()
    os.environ["KD_SMOKE"] = "0"
    os.environ["KD_PROGRESS"] = "text"
    os.environ.setdefault("PYTHONHASHSEED", "0")
    (source,) = NOTEBOOKS.glob(f"{args.notebook}_*.ipynb")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the start")
    print(f"papermill {papermill.__version__}; nbclient from {Path(inspect.getfile(run_notebooks.NotebookClient)).parent}")

    with tempfile.TemporaryDirectory(prefix="trial_papermill_") as tmp:
        tmp = Path(tmp)
        bar = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROGRESS_CELL)])
        bar.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}

        runs = {"run_notebooks": [], "papermill": []}
        for round_ in range(2):  # alternate, so that a slow spell of the machine does not land on one of them
            copy = tmp / f"rn{round_}" / source.name
            copy.parent.mkdir()
            shutil.copy(source, copy)
            start = time.perf_counter()
            inner = run_notebooks.execute(copy, args.timeout, save=True)
            runs["run_notebooks"].append((time.perf_counter() - start, inner, nbformat.read(copy, as_version=4)))
            print(f"run {round_ + 1}  run_notebooks {runs['run_notebooks'][-1][0]:6.1f} s wall "
                  f"({inner:.1f} s of cells)", flush=True)

            copy, output = tmp / f"pm{round_}.ipynb", tmp / f"pm{round_}.out.ipynb"
            shutil.copy(source, copy)
            start = time.perf_counter()
            inner = papermill_execute(copy, output, args.timeout)
            runs["papermill"].append((time.perf_counter() - start, inner, nbformat.read(output, as_version=4)))
            print(f"run {round_ + 1}  papermill     {runs['papermill'][-1][0]:6.1f} s wall "
                  f"({inner:.1f} s by its metadata)", flush=True)

        bar_rn, bar_pm = tmp / "bar_rn" / "bar.ipynb", tmp / "bar_pm.ipynb"
        bar_rn.parent.mkdir()
        nbformat.write(bar, bar_rn)
        nbformat.write(bar, bar_pm)
        run_notebooks.execute(bar_rn, args.timeout, save=True)
        papermill_execute(bar_pm, tmp / "bar_pm.out.ipynb", args.timeout)
        papermill_execute_clean(bar_pm, tmp / "bar_pm.clean.ipynb", args.timeout)
        bars = {"run_notebooks": progress_storage(nbformat.read(bar_rn, as_version=4)),
                "papermill": progress_storage(nbformat.read(tmp / "bar_pm.out.ipynb", as_version=4)),
                "papermill + clean-up": progress_storage(nbformat.read(tmp / "bar_pm.clean.ipynb", as_version=4))}

    rn, pm = runs["run_notebooks"], runs["papermill"]
    noises = {"run_notebooks": noise(rn[0][2], rn[1][2]), "papermill": noise(pm[0][2], pm[1][2]),
              "papermill + clean-up": noise(clean(pm[0][2]), clean(pm[1][2]))}
    wall = {name: [r[0] for r in value] for name, value in runs.items()}
    loc = {"run_notebooks": code_lines(run_notebooks.execute), "papermill": code_lines(papermill_execute),
           "papermill + clean-up": sum(map(code_lines, (papermill_execute, papermill_execute_clean, strip_papermill)))}
    added = added_metadata(pm[0][2], rn[0][2])
    extra = extra_packages()

    print(f"\n{source.name}, {len(rn[0][2].cells)} cells; two runs each; load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{'':22} {'wall s (run 1, 2)':>18} {'cells differ':>13} {'diff lines: cells + nb metadata':>32} {'code lines':>11}")
    for name, value in noises.items():
        times = wall["papermill" if name.startswith("papermill") else name]
        print(f"{name:22} {times[0]:8.1f} {times[1]:8.1f} {value['cells']:13d} {value['cell_lines']:20d} + "
              f"{value['metadata_lines']:<9d} {loc[name]:11d}   "
              f"cells {value['which'][:6]}{' ...' if value['cells'] > 6 else ''}, "
              f"metadata {', '.join(value['metadata_keys']) or '-'}")
    print(f"papermill adds metadata: notebook {added['notebook']}, cells {added['cells']} "
          f"(on {added['cells_with_them']} of {len(pm[0][2].cells)} cells)")
    print(f"papermill brings {len(extra)} packages the course venv lacks: {', '.join(extra)}")
    print("progress bar stored as:")
    for name, value in bars.items():
        print(f"  {name:22} {value['stream_outputs']:3d} stream output(s), {value['carriage_returns']:3d} carriage returns, "
              f"{value['chars']:5d} chars -> coalesced: {value['coalesced']}")

    quiet = noises["run_notebooks"]["cells"]
    straight = noises["papermill"]["cells"] <= quiet and bars["papermill"]["coalesced"]
    parity = noises["papermill + clean-up"]["cells"] <= quiet and bars["papermill + clean-up"]["coalesced"]
    spread = max(max(t) - min(t) for t in wall.values())
    overhead = min(wall["papermill"]) - min(wall["run_notebooks"])
    timing = (f"wall time {overhead:+.1f} s per notebook for papermill (best of 2), within the {spread:.1f} s run-to-run spread, "
              "so no reason either way" if abs(overhead) <= spread else
              f"wall time {overhead:+.1f} s per notebook for papermill (best of 2, spread {spread:.1f} s)")
    print("\nconclusion:")
    if straight:
        verdict = "switch" if loc["papermill"] <= loc["run_notebooks"] else "switch only if the dependency is worth it"
        print(f"  {verdict}: papermill alone re-runs as quietly ({noises['papermill']['cells']} cells differ against "
              f"{quiet}) and coalesces the bar, in {loc['papermill']} lines against {loc['run_notebooks']}; {timing}")
    else:
        print(f"  keep run_notebooks' execute(). papermill does not do what it does: a re-run differs in "
              f"{noises['papermill']['cells']} cells ({noises['papermill']['diff_lines']} diff lines) against {quiet} "
              f"({noises['run_notebooks']['diff_lines']}),"
              f" and the progress bar is stored as {bars['papermill']['stream_outputs']} outputs with "
              f"{bars['papermill']['carriage_returns']} carriage returns.")
        if parity:
            print(f"  Reaching execute()'s result takes hand-written clean-up on top of it (timestamps off, CoalesceStreams): "
                  f"{loc['papermill + clean-up']} lines against execute()'s {loc['run_notebooks']}, a saving of "
                  f"{loc['run_notebooks'] - loc['papermill + clean-up']} lines that costs {len(extra)} packages outside "
                  "requirements.txt, for a library that runs the same nbclient underneath.")
        else:
            print("  Even with the clean-up it does not reach execute()'s quiet re-runs.")
        print(f"  {timing}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
