"""pytest hooks for the notebooks: nbval runs each one with its own empty checkpoint folder.

That makes every CI run prove what a learner relies on: any notebook runs on its own, in
any order, without the checkpoints that another notebook would have saved.
"""

from __future__ import annotations

import os
import shutil
import tempfile

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
