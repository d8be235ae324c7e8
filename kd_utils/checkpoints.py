"""Atomic checkpoints that know their architecture and the checksum of their weights: saving and loading only."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import config
from .models import build_model


class CheckpointMismatchError(RuntimeError):
    """Raised when a checkpoint does not fit the model it is loaded into."""


def save_checkpoint(model: nn.Module, path: Path | str, metadata: dict[str, Any] | None = None) -> Path:
    """Save a model's architecture, config, weights and metadata atomically; return the path.

    The bytes go to a temporary file in the same folder, are flushed to disk, and only
    then renamed over `path` (``kd.atomic_write``), so a crash mid-save leaves the
    previous checkpoint intact.
    """
    path = Path(path)
    metadata = _plain(dict(metadata or {}))
    _check_metadata(metadata)
    state_dict = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    payload = {
        "architecture": type(model).__name__,
        "config": dict(getattr(model, "config", {})),
        "state_dict": state_dict,
        "weights_sha256": weights_checksum(state_dict),
        "metadata": metadata,
        "torch_version": str(torch.__version__),
    }
    with config.atomic_write(path) as file:
        torch.save(payload, file)
    return path


_METADATA_TYPES = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """Return `value` with numpy scalars and arrays turned into Python numbers and lists (``np.mean`` returns a
    ``numpy.float64``, which a weights-only load refuses to read back), and a typed recipe into its ``as_dict()``."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if hasattr(value, "as_dict") and dataclasses.is_dataclass(value):  # a typed recipe: as its plain record
        return value.as_dict()
    return value


def _check_metadata(value: Any, where: str = "metadata") -> None:
    """Refuse metadata that a weights-only load could not read back: only numbers, text, None, lists and dicts."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} keys must be strings, got {key!r} ({type(key).__name__})")
            _check_metadata(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_metadata(item, f"{where}[{index}]")
    elif not isinstance(value, _METADATA_TYPES):
        raise TypeError(
            f"{where} is a {type(value).__name__}; checkpoint metadata may hold only numbers, text, None, lists and "
            "dicts (convert a tensor with .item() or .tolist(), a path with str())"
        )


def weights_checksum(state_dict: dict[str, torch.Tensor]) -> str:
    """Return a SHA-256 of the weights' names, shapes, dtypes and bytes (stored in the checkpoint, checked on load)."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key]
        digest.update(f"{key}:{(tensor.numel(),)}:{tensor.dtype}".encode())
        digest.update(_tensor_bytes(tensor))
    return digest.hexdigest()


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    """Return a tensor's values as raw bytes, in row-major order whatever its memory layout."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def fingerprint(*parts: Any) -> str:
    """Return a short SHA-256 of tensors (their shapes, dtypes and bytes) and JSON-able values, in order.

    Names what a stored result was computed from (``kd.stored_logits``, ``kd.train_cohort(store=True)``), so
    other weights, other images or another recipe never read a stale file.
    """
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            digest.update(f"tensor:{tuple(part.shape)}:{part.dtype}:".encode())
            digest.update(_tensor_bytes(part))
        else:
            digest.update(json.dumps(_plain(part), sort_keys=True, default=_unhashable).encode())
        digest.update(b"|")
    return digest.hexdigest()[:24]


def _unhashable(value: Any) -> Any:
    raise TypeError(f"fingerprint() takes tensors and JSON-able values; pass a {type(value).__name__} as its own part "
                    "(a tensor) or convert it first (a state dict: weights_checksum)")


def store_path(kind: str, key: str) -> Path:
    """Return where a stored result of `kind` ("logits", "cohort") named `key` lives, beside the checkpoints."""
    return config.checkpoint_dir() / "store" / kind / f"{key}.pt"


def computing_environment() -> dict[str, str]:
    """Return the torch version and CPU instruction set that computed a result (a stored one records them)."""
    return {"torch": str(torch.__version__), "cpu_capability": str(torch.backends.cpu.get_cpu_capability())}


def read_checkpoint(path: Path | str) -> dict[str, Any]:
    """Read a checkpoint's payload, with a clear error for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train the model first (or call kd.load_or_train_teacher())")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointMismatchError(
            f"{path} is not a readable checkpoint ({type(error).__name__}: {error}); delete it and train again"
        ) from error
    if not isinstance(payload, dict) or "state_dict" not in payload or "architecture" not in payload:
        raise CheckpointMismatchError(f"{path} was not written by kd.save_checkpoint; delete it and train again")
    stored = payload.get("weights_sha256")  # checkpoints written before checksums existed have none
    if stored is not None and weights_checksum(payload["state_dict"]) != stored:
        raise CheckpointMismatchError(
            f"{config.relative_path(path)} is corrupted: its weights do not match the checksum stored when it was "
            "saved; delete it and train again"
        )
    return payload


def load_checkpoint(path: Path | str, model: nn.Module | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint into `model` (or into a model rebuilt from it); return (model, metadata).

    Raises CheckpointMismatchError, naming both sides, when the checkpoint holds another
    architecture, another configuration, or weights of other shapes: never a silently
    wrong model.
    """
    payload = read_checkpoint(path)
    if model is None:
        model = build_model(payload["architecture"], **payload["config"])
    expected = type(model).__name__
    expected_config = dict(getattr(model, "config", {}))
    if payload["architecture"] != expected or payload["config"] != expected_config:
        raise CheckpointMismatchError(
            f"{config.relative_path(path)} holds a {payload['architecture']}({_format(payload['config'])}) but the model is "
            f"{expected}({_format(expected_config)}); delete the file, or pass retrain=True to retrain"
        )
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise CheckpointMismatchError(f"{path} does not fit {expected}: {error}") from error
    return model, payload["metadata"]


def _format(settings: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in settings.items())
