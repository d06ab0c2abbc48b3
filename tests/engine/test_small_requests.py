"""Small requests beside the transfers (issue 17, W4): a worker process runs ``concurrency`` transfers and,
in the threads beside them, small requests (objects up to SMALL_OBJECT, listings, completes), 3 x
``concurrency`` requests in all by default; the bounds on transfers and on buffered bytes stay as they were.
Pure scheduling, against an executor that only records what it is given."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from drtransfer.endpoints import Credentials, Endpoint
from drtransfer.engine.dispatch import small_request
from drtransfer.engine.messages import OpTask, PrepareDone, PrepareTask, Report, Task
from drtransfer.engine.scheduler import Scheduler
from drtransfer.engine.settings import SMALL_OBJECT, EngineSettings, MiB
from drtransfer.errors import ConfigError
from drtransfer.operations import CopyObject, ModelPlan, ObjectLocation, SourceObject

KEYS = Credentials("key-id", "not-a-secret")
ENDPOINTS = {
    "src": Endpoint("src", "http://127.0.0.1:9", "us-east-1", KEYS),
    "dst": Endpoint("dst", "http://127.0.0.1:10", "us-east-1", KEYS),
}


class Recording:
    """An executor that runs nothing: the tasks it was given, in order."""

    def __init__(self) -> None:
        self.tasks: list[Task] = []

    def start(self, endpoints: Mapping[str, Endpoint], settings: EngineSettings, placement: Any = None) -> None:
        pass

    def submit(self, task: Task) -> None:
        self.tasks.append(task)

    def reports(self, timeout: float) -> Iterator[Report]:
        return iter(())

    def stop(self, *, cancel: bool) -> list[Report]:
        return []


def plan(name: str, sizes: list[int]) -> ModelPlan:
    model = ModelPlan(model_id=name, target_root=ObjectLocation("dst", "b", f"{name}/"))
    for n, size in enumerate(sizes):
        source = SourceObject(ObjectLocation("src", "s", f"{name}/k{n}"), size, "0" * 32)
        model.add(CopyObject(source, ObjectLocation("dst", "b", f"{name}/k{n}")))
    model.target_listing = ()
    return model


def started(settings: EngineSettings, *models: list[int]) -> list[OpTask]:
    """The copies the scheduler has in flight once the prepares are done and it filled the pool."""
    executor = Recording()
    plans = [plan(f"m{n}", sizes) for n, sizes in enumerate(models)]
    scheduler = Scheduler(plans, ENDPOINTS, settings, [], executor)
    scheduler.lifecycle.start()
    scheduler.dispatch._fill()
    prepares = [task for task in executor.tasks if isinstance(task, PrepareTask)]
    assert prepares and len(prepares) == len(executor.tasks)  # nothing else before the prepares are done
    for prepare in prepares:
        scheduler._handle(PrepareDone(prepare.task_id, (), 0, None))
    scheduler.dispatch._fill()
    return [task for task in executor.tasks if isinstance(task, OpTask)]


LARGE, SMALL = 2 * MiB, 16 * 1024  # a large copy buffers its 2 MiB: 4 fit in the budgets below


def test_small_copies_run_beside_the_transfers_and_the_transfer_bound_holds() -> None:
    settings = EngineSettings(processes=1, concurrency=2, part_size=5 * MiB, multipart_threshold=64 * MiB)
    assert settings.worker_threads == 6  # 3 x concurrency threads per process
    running = started(settings, [LARGE] * 8, [SMALL] * 40)

    transfers = [t for t in running if not small_request(t)]
    assert len(running) == settings.in_flight == 2 * settings.worker_threads  # 2 x the threads, as before
    assert len(transfers) == 2 * settings.concurrency  # large copies: what 2 threads per process had
    assert {t.op.size for t in running if small_request(t)} == {SMALL}


def test_a_transfer_waiting_for_room_lets_the_small_copies_of_other_models_pass() -> None:
    settings = EngineSettings(processes=1, concurrency=1, small_requests=4)
    running = started(settings, [LARGE] * 3, [SMALL] * 3, [LARGE, SMALL, SMALL])
    large = sorted(t.model for t in running if t.op.size == LARGE)
    small = sorted(t.model for t in running if t.op.size == SMALL)
    assert large == [0, 2]  # 2 x concurrency transfers: model 0's other two large copies wait
    assert small == [1, 1, 1, 2, 2]  # every small copy passes them, model 2's behind its large one too


def test_small_requests_can_be_set_and_never_go_below_concurrency() -> None:
    assert EngineSettings(concurrency=4, small_requests=1).worker_threads == 4
    assert EngineSettings(concurrency=4, small_requests=20).worker_threads == 20
    assert len(started(EngineSettings(processes=1, concurrency=2, small_requests=2), [SMALL] * 40)) == 4
    with pytest.raises(ConfigError, match="small requests must be at least 1"):
        EngineSettings(small_requests=0)


def test_what_counts_as_a_small_request() -> None:
    settings = EngineSettings(processes=1, concurrency=1, small_requests=3)
    [small, limit, large] = started(settings, [1024, SMALL_OBJECT, SMALL_OBJECT + 1])
    assert small_request(small) and small_request(limit) and not small_request(large)
