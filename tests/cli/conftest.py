"""Fixtures of the CLI tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def forgeflow_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``FORGEFLOW_*`` setting from the caller's environment; data in a temporary folder."""
    for key in list(os.environ):
        if key.startswith("FORGEFLOW_") and key != "FORGEFLOW_UPDATE_GOLDEN":
            monkeypatch.delenv(key)
    monkeypatch.setenv("FORGEFLOW_DATA_DIR", str(tmp_path / "data"))
