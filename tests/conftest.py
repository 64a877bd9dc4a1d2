"""Shared pytest fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ``../shared/data`` (override with env ``LEUKCORE_SHARED_DATA``); skip if absent."""
    env = os.environ.get("LEUKCORE_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set LEUKCORE_SHARED_DATA)")
    return path
