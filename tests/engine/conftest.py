"""Fixtures of the engine tests (helpers live in engine_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine import engine_helpers
from tests.engine.engine_helpers import WORKERS, Recorder


@pytest.fixture(params=WORKERS)
def workers(request: pytest.FixtureRequest) -> Iterator[tuple[int, str | None]]:
    """(processes, start method): every engine test runs in-process and with worker processes, on both
    data paths (base_settings picks up the path)."""
    processes, start_method, data_path = request.param
    engine_helpers.DATA_PATH[0] = data_path
    try:
        yield processes, start_method
    finally:
        engine_helpers.DATA_PATH[0] = "lean"


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    yield Recorder()
