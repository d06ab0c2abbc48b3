"""Fixtures of the engine tests (helpers live in engine_helpers.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# tests/infra holds shared test infrastructure (the fault proxy); it is not a package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))
from engine_helpers import WORKERS, Recorder


@pytest.fixture(params=WORKERS)
def workers(request: pytest.FixtureRequest) -> tuple[int, str | None]:
    """(processes, start method): every engine test runs in-process and with worker processes."""
    value: tuple[int, str | None] = request.param
    return value


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    yield Recorder()
