"""Execute the course's notebooks in place, in order, storing their outputs and how long each took.

    python scripts/run_notebooks.py            # full mode, from empty checkpoints (what `make run` does)
    python scripts/run_notebooks.py --smoke    # smoke mode: measures timings, leaves the notebooks as they are
    python scripts/run_notebooks.py --only 03 --keep-checkpoints

Timings go to notebooks/timings.json, which the index notebook shows as the course map.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert.preprocessors import CoalesceStreamsPreprocessor

from kd_utils.config import atomic_write

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
TIMINGS = NOTEBOOKS / "timings.json"


def course_notebooks() -> list[Path]:
    """Return the numbered notebooks in order, with the index (00) last so it can show this run's timings."""
    numbered = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if not p.name.startswith("00"))
    return numbered + sorted(NOTEBOOKS.glob("00_*.ipynb"))


def execute(path: Path, timeout: int, save: bool = True) -> float:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:  # timestamps of an earlier run
        cell.metadata.pop("execution", None)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=True, record_timing=False,  # no per-cell timestamps: a re-run changes only what changed
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    if not save:
        return seconds
    # one stream output per cell, and a progress bar's carriage-return updates reduced to its last state
    notebook, _ = CoalesceStreamsPreprocessor().preprocess(notebook, {})
    with atomic_write(path, "w", encoding="utf-8") as file:
        text = stable_widget_ids(nbformat.writes(notebook))
        file.write(text if text.endswith("\n") else text + "\n")
    return seconds


def stable_widget_ids(text: str) -> str:
    """Rename ipywidgets' random model ids (uuid4 hex) in a notebook's JSON to numbers, in the order its outputs and
    then each widget's children reach them: a re-run that draws the same widgets stores the same notebook."""
    state = json.loads(text)["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    state = state.get("state", {})
    order: list[str] = []

    def visit(model_id: str) -> None:
        if model_id in state and model_id not in order:
            order.append(model_id)
            for child in re.findall(r"IPY_MODEL_([0-9a-f]{32})", json.dumps(state[model_id]["state"], sort_keys=True)):
                visit(child)

    for model_id in re.findall(r'"model_id": "([0-9a-f]{32})"', text):  # the views stored in outputs, in cell order
        visit(model_id)
    for number, model_id in enumerate(order + sorted(set(state) - set(order))):
        text = text.replace(model_id, f"widget-{number:02d}")
    return nbformat.writes(nbformat.reads(text, as_version=4))  # the widget state's keys sorted again


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="run in smoke mode (KD_SMOKE=1)")
    parser.add_argument("--only", nargs="*", default=None, help="notebook number prefixes to run, e.g. 01 03")
    parser.add_argument("--keep-checkpoints", action="store_true", help="reuse trained models instead of starting empty")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed for one cell")
    args = parser.parse_args()

    mode = "smoke" if args.smoke else "full"
    os.environ["KD_SMOKE"] = "1" if args.smoke else "0"
    os.environ["KD_PROGRESS"] = "text"  # a text progress bar stores cleanly in the notebook
    os.environ.setdefault("PYTHONHASHSEED", "0")
    checkpoints = ROOT / "checkpoints" / mode
    if not args.keep_checkpoints and args.only is None and checkpoints.exists():
        print(f"Starting from empty checkpoints: removing {checkpoints.relative_to(ROOT)}/")
        shutil.rmtree(checkpoints)
    paths = course_notebooks()
    if args.only:
        paths = [p for p in paths if any(p.name.startswith(prefix) for prefix in args.only)]
    timings = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    total = 0.0
    for path in paths:
        print(f"==> {path.name} ({mode} mode) ...", flush=True)
        seconds = execute(path, args.timeout, save=not args.smoke)
        total += seconds
        print(f"    {seconds:6.1f} s", flush=True)
        timings.setdefault(mode, {})[path.stem] = round(seconds, 1)
        with atomic_write(TIMINGS, "w", encoding="utf-8") as file:
            file.write(json.dumps(timings, indent=2, sort_keys=True) + "\n")
    print(f"==> {len(paths)} notebooks in {total / 60:.1f} minutes ({mode} mode)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
