"""Shared fixtures: a small real subset of Fashion-MNIST, loaded once per test session."""

from __future__ import annotations

import pytest

import kd_utils as kd


@pytest.fixture(scope="session")
def data() -> kd.data.FashionMNISTData:
    return kd.load_fashion_mnist(smoke=True)


@pytest.fixture(autouse=True)
def _isolated_checkpoints(tmp_path, monkeypatch):
    """Keep every test's checkpoints in its own temporary folder."""
    monkeypatch.setattr(kd.config, "CHECKPOINT_DIR", tmp_path / "checkpoints")
