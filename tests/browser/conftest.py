"""Fixtures of the browser suite: Debian's Chromium driven by Playwright, one JupyterLab server, the slide decks.

Nothing here downloads a browser: Playwright launches the system's Chromium (`apt-get install chromium`,
which `make setup` does as root). Without it every browser test fails with one line saying so, in CI and
locally alike; `pytest -m "not browser"` runs the rest of the suite without it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import (
    ARTIFACTS,
    CHROMIUM_CANDIDATES,
    NOTEBOOKS,
    ROOT,
    course_notebooks,
    find_chromium,
    load_build_slides,
)

GET_CHROMIUM = "install Debian's Chromium with `make setup` (as root) or `sudo apt-get install chromium`"
LAB_START_TIMEOUT_S = 120


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    browser_items = [item for item in items if here in Path(item.path).parents]
    for item in browser_items:
        item.add_marker(pytest.mark.browser)
    if browser_items and missing_browser():
        # One failure with one line saying how to get Chromium, not one per test; the rest are deselected.
        rest = set(browser_items[1:])
        config.hook.pytest_deselected(items=list(rest))
        items[:] = [item for item in items if item not in rest]


def missing_browser() -> str | None:
    """Return one line saying what the browser tests lack and how to get it, or None when nothing is missing."""
    if find_chromium() is None:
        looked = os.environ.get("KD_CHROMIUM") or ", ".join(CHROMIUM_CANDIDATES)
        return (f"Chromium not found (looked for {looked}): {GET_CHROMIUM}; "
                "or leave the browser tests out with -m 'not browser'")
    if importlib.util.find_spec("playwright") is None:
        return ("Playwright (Python) is not installed: run `make setup` (pip install -r requirements.txt); "
                "it drives the system's Chromium, no browser download needed")
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    problem = missing_browser()
    if problem:
        pytest.fail(problem, pytrace=False)
    return find_chromium()


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        chromium = playwright.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# ----------------------------------------------------------------------------- the JupyterLab server

# Settings for this server only (its own user-settings folder): every cell rendered (JupyterLab 4 renders
# only the cells in view by default, and a test would then check nothing), no autosave (nothing is ever
# saved), no news or update checks (no network).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}

# Each kernel gets its own empty checkpoint folder, as nbval's notebooks do (conftest.py at the root):
# every notebook must run on its own, and no run may touch checkpoints/full.
KERNEL_LAUNCHER = """#!/bin/sh
KD_CHECKPOINT_DIR="$(mktemp -d "{folder}/checkpoints-XXXXXX")" exec "{python}" -m ipykernel_launcher -f "$1"
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _lab_home(base: Path) -> Path:
    """Lay out a server's private folders: a copy of notebooks/, links to the rest, settings and a kernel."""
    root = base / "course"
    root.mkdir()
    # A copy, so Lab can never write into the real notebooks; the links keep ../images and friends working.
    shutil.copytree(NOTEBOOKS, root / "notebooks", ignore=shutil.ignore_patterns(".*"))
    for entry in ROOT.iterdir():
        if entry.name not in {"notebooks", "checkpoints", ".git", ".venv"} and not entry.name.startswith("."):
            (root / entry.name).symlink_to(entry)
    for name, values in LAB_SETTINGS.items():
        path = base / "settings" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    kernel = base / "share" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    launcher = kernel / "launch.sh"
    launcher.write_text(KERNEL_LAUNCHER.format(folder=base, python=sys.executable), encoding="utf-8")
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": ["/bin/sh", str(launcher), "{connection_file}"],
        "display_name": "Python 3 (ipykernel)", "language": "python", "metadata": {"debugger": False},
    }), encoding="utf-8")
    return root


class LabServer:
    """A JupyterLab server on a free port with a token, in smoke mode, over a copy of the notebooks."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="kd-lab-"))
        self.root = _lab_home(self.base)
        self.port = _free_port()
        self.token = os.urandom(16).hex()
        self.log = self.base / "lab.log"
        env = {key: value for key, value in os.environ.items()
               if key not in {"KD_PROGRESS", "KD_CHECKPOINT_DIR", "JUPYTER_CONFIG_PATH"}}
        env.update(
            KD_SMOKE="1",
            JUPYTER_CONFIG_DIR=str(self.base / "config"),  # none of the user's Jupyter config
            JUPYTER_RUNTIME_DIR=str(self.base / "runtime"),
            JUPYTER_PATH=str(self.base / "share"),  # our python3 kernel comes first
            IPYTHONDIR=str(self.base / "ipython"),
        )
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}", f"--LabApp.user_settings_dir={self.base / 'settings'}",
            f"--LabApp.workspaces_dir={self.base / 'workspaces'}", "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=", "--LabApp.extension_manager=readonly",
            "--allow-root",  # CI runs as root; the server listens on 127.0.0.1 only, behind a token
        ]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        self._wait_until_up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/lab?token={self.token}"

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + LAB_START_TIMEOUT_S
        status = f"http://127.0.0.1:{self.port}/api/status?token={self.token}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(status, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer within {LAB_START_TIMEOUT_S} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def lab_server(chromium_path: str) -> Iterator[LabServer]:
    server = LabServer()
    try:
        yield server
    finally:
        server.stop()


# ----------------------------------------------------------------------------- the slide decks


class DeckExport:
    """The decks exported and visited in Chromium by deck_check.py, in a process of its own.

    It starts with the JupyterLab tests and runs beside them (the kernels leave part of the 2 cores idle);
    the deck tests then assert on its report.
    """

    def __init__(self, chromium: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="kd-decks-"))
        self.report = self.folder / "report.json"
        self.missing = [asset.spec for asset in load_build_slides().missing_assets()]
        self.process = None if self.missing else subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("deck_check.py")), "--chromium", chromium,
             "--out", str(self.folder), "--report", str(self.report), *map(str, course_notebooks())],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def reports(self) -> dict[str, dict]:
        """Wait for the decks to be exported and visited; return what each showed, by notebook file name."""
        if self.missing:
            pytest.fail(f"the offline slide assets are missing from slides/lib ({', '.join(self.missing)}): "
                        "run `make setup` (it fetches them from the npm registry once)", pytrace=False)
        output, _ = self.process.communicate(timeout=900)
        if self.process.returncode != 0 or not self.report.exists():
            pytest.fail(f"exporting or visiting the decks failed:\n{output[-3000:]}", pytrace=False)
        return json.loads(self.report.read_text(encoding="utf-8"))

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.communicate()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def deck_export(chromium_path: str) -> Iterator[DeckExport]:
    export = DeckExport(chromium_path)
    try:
        yield export
    finally:
        export.close()
