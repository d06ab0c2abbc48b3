"""Fixtures of the engine tests (helpers live in engine_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine.engine_helpers import WORKERS, Recorder


@pytest.fixture(params=WORKERS)
def workers(request: pytest.FixtureRequest) -> tuple[int, str | None]:
    """(processes, start method): every engine test runs in-process and with worker processes."""
    value: tuple[int, str | None] = request.param
    return value


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    yield Recorder()
