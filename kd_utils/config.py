"""Device choice, seeding, smoke mode and the project's paths."""

from __future__ import annotations

import os
import random
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
import torch

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


DATA_DIR = _env_path("KD_DATA_DIR", PROJECT_ROOT / "data")
CHECKPOINT_DIR = _env_path("KD_CHECKPOINT_DIR", PROJECT_ROOT / "checkpoints")


def is_smoke() -> bool:
    """Return True when KD_SMOKE asks for the small, fast smoke mode."""
    return os.environ.get("KD_SMOKE", "").strip().lower() in {"1", "true", "yes", "on"}


def mode_name() -> str:
    """Return "smoke" or "full", for printing and for checkpoint folders."""
    return "smoke" if is_smoke() else "full"


def checkpoint_dir() -> Path:
    """Return the checkpoint folder for the current mode (smoke runs never touch full ones)."""
    return CHECKPOINT_DIR / mode_name()


def relative_path(path: Path | str) -> str:
    """Return `path` relative to the project root when it lies inside it, else as it is (for printing)."""
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


@contextmanager
def atomic_write(path: Path | str, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Write `path` all or nothing: yield a temporary file beside it, then flush, fsync and os.replace it over `path`.

    An exception (or a crash) inside the ``with`` block leaves the previous file as it was and no
    temporary file behind. An existing file keeps its permissions; a new one gets the usual ones
    (0666 less the umask; ``tempfile.mkstemp`` alone would leave 0600).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes a whole file: mode must be 'w' (text) or 'wb' (bytes), got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, mode, encoding=encoding) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def get_device(prefer: str | None = None) -> torch.device:
    """Return CUDA if present, then Apple MPS, then the CPU (or KD_DEVICE / `prefer`)."""
    choice = prefer or os.environ.get("KD_DEVICE")
    if choice:
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator seeded the same way.

    The same seed gives the same numbers on the same CPU with the same number of threads
    (torch.get_num_threads()): another thread count sums in another order, so the last
    digits, and a close hyperparameter choice, can change. On a GPU some kernels are
    non-deterministic, so the last digits may differ between runs there.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def describe_run() -> str:
    """Return a one-line description of mode, device and threads, for a notebook's first output."""
    return (
        f"mode={mode_name()} (KD_SMOKE={'1' if is_smoke() else '0'}), "
        f"device={get_device()}, torch {torch.__version__}, threads={torch.get_num_threads()}"
    )


def progress_bar(total: int, name: str, enabled: bool):
    """Return a tqdm bar: a widget in Jupyter, plain text when KD_PROGRESS=text (stored notebooks, CI)."""
    if os.environ.get("KD_PROGRESS") == "text":
        from tqdm import tqdm

        return tqdm(total=total, desc=name, disable=not enabled, file=sys.stdout, mininterval=10, ncols=100)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=name, disable=not enabled, mininterval=0.5)
