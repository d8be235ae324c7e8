"""pytest hooks for the notebooks: nbval runs each one with its own empty checkpoint folder, and nothing on stderr.

That makes every CI run prove what a learner relies on: any notebook runs on its own, in
any order, without the checkpoints that another notebook would have saved; and no cell shows
the red text of a warning or a stray message (what the JupyterLab suite checks by eye, checked
here on every notebook, so that Lab only re-runs the notebooks whose widgets it must see).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_started: set[str] = set()
_folders: list[str] = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    notebook = item.parent
    if notebook is None or not str(getattr(notebook, "path", "")).endswith(".ipynb"):
        return
    key = str(notebook.path)
    if key in _started:
        return
    _started.add(key)
    # The notebook's kernel starts right after this hook and inherits this environment.
    folder = tempfile.mkdtemp(prefix=f"kd-{notebook.path.stem}-")
    _folders.append(folder)
    os.environ["KD_CHECKPOINT_DIR"] = folder


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for folder in _folders:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    result = yield
    stderr = ["".join(output.get("text", "")) for output in getattr(item, "test_outputs", None) or []
              if output.get("output_type") == "stream" and output.get("name") == "stderr"]
    if stderr:
        pytest.fail(f"{item.parent.path.name}, {item.name}: the cell wrote to stderr, which a learner sees in red: "
                    f"{stderr[0].strip()[:300]!r}", pytrace=False)
    return result


# ----------------------------------------------------------------------------- two test processes (make test: -n 2)

def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, give each test process its share of the cores: torch, and the kernels nbval starts, read it.

    Two processes on two cores, each running torch on both, would put four threads on two cores, and torch's
    threads wait for one another by spinning: everything runs several times slower.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)


LONGEST_FIRST = ("tests/test_headline.py", "tests/browser", "notebooks/07", "notebooks/05", "notebooks/04",
                 "notebooks/03", "tests/test_lm_train.py", "tests/test_ddp.py", "notebooks/08")

try:
    from xdist.scheduler import LoadFileScheduling
except ImportError:  # pytest-xdist is in requirements.txt; without it the suite runs in one process
    pass
else:

    @pytest.hookimpl(optionalhook=True)  # `-p no:xdist` still runs the suite, in one process
    def pytest_xdist_make_scheduler(config: pytest.Config, log):
        """Hand out whole files (a notebook's cells share one kernel, in order), and the browser suite as one unit:
        its two files share one Chromium, one JupyterLab and one export of the decks."""

        class CourseScheduling(LoadFileScheduling):
            def _split_scope(self, nodeid: str) -> str:
                return "tests/browser" if nodeid.startswith("tests/browser/") else super()._split_scope(nodeid)

        config.option.loadscopereorder = False  # keep the order pytest_collection_modifyitems gave
        return CourseScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, hand out the longest units first (measured), then the others by their number of tests,
    so that no long unit is left running alone at the end while the other process waits. A file's tests keep
    their order (a notebook's cells run in order)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return

    def scope(item: pytest.Item) -> str:
        path = Path(item.path).relative_to(config.rootpath).as_posix()
        return "tests/browser" if path.startswith("tests/browser/") else path

    counts: dict[str, int] = {}
    for item in items:
        counts[scope(item)] = counts.get(scope(item), 0) + 1

    def rank(item: pytest.Item) -> tuple[int, int, str]:
        unit = scope(item)
        first = next((i for i, prefix in enumerate(LONGEST_FIRST) if unit.startswith(prefix)), len(LONGEST_FIRST))
        return first, -counts[unit], unit

    items.sort(key=rank)  # stable
