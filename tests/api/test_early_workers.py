"""Workers started while the parent plans (issue 17, item 3): the local executor's processes are forked
once the targets are checked, get their clients ready while the sources are inspected, and are the ones
that run the transfer; when nothing runs (declined, other settings), they are stopped, none is left."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from drtransfer import hookimpl
from drtransfer.endpoints import Credentials, Endpoint
from drtransfer.engine import EngineSettings
from drtransfer.engine.executor import ExecutorChoice
from drtransfer.engine.local_executor import LocalExecutor
from drtransfer.jobs import Declined, JobSubscriber, Notifications, UploadRequest, upload
from drtransfer.locals3 import SeaweedServer
from drtransfer.plugins import get_plugin_manager
from drtransfer.registry import Registry
from drtransfer.runconfig import RunConfig
from tests.conftest import list_tree

ENGINE = EngineSettings(processes=1, concurrency=2)
QUIET = Notifications(environ={})


class RecordingExecutor(LocalExecutor):
    """The local executor, noting when it is started and which worker processes it forks."""

    def __init__(self, log: list[Any]) -> None:
        super().__init__()
        self.log = log

    def start_early(self, endpoints: Mapping[str, Endpoint], settings: EngineSettings) -> None:
        self.log.append("start_early")
        super().start_early(endpoints, settings)

    def start(self, endpoints: Mapping[str, Endpoint], settings: EngineSettings, placement: Any = None) -> None:
        self.log.append("start")
        super().start(endpoints, settings, placement)

    def _spawn(self) -> None:
        super()._spawn()
        self.log.append(("spawn", self.workers[-1].process))


class Recorder(JobSubscriber):
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    def on_prepared(self, prepared: Sequence[Any], **kwargs: Any) -> None:
        self.log.append("prepared")


def recording_host(log: list[Any]) -> Any:
    class Plugin:
        @hookimpl
        def drtransfer_register_executors(self, register: Registry[Any]) -> None:
            register("recording", lambda choice, settings: (RecordingExecutor(log), settings), "for the tests")

    return get_plugin_manager(extra_plugins=[("recording", Plugin())])


def spawned(log: list[Any]) -> list[Any]:
    return [entry[1] for entry in log if isinstance(entry, tuple)]


def test_the_workers_forked_before_the_plan_run_the_transfer(
    runs: list[RunConfig], upload_s3: SeaweedServer, upload_bucket: str
) -> None:
    log: list[Any] = []
    request = UploadRequest(runs, engine=ENGINE, executor=ExecutorChoice("recording"), notifications=QUIET)
    report = upload(request, host=recording_host(log), subscribers=[Recorder(log)])

    assert report.ok, [o.result.error for o in report.outcomes]
    assert [e if isinstance(e, str) else "spawn" for e in log] == ["start_early", "spawn", "prepared", "start"]
    (worker,) = spawned(log)  # one process, forked before the models were planned, ran every task
    assert not worker.is_alive()
    assert {key.split("/")[0] for key in list_tree(upload_s3, upload_bucket)} == {"alpha-up", "beta-up"}


def test_workers_forked_early_are_stopped_when_the_upload_is_declined(
    runs: list[RunConfig], upload_s3: SeaweedServer, upload_bucket: str
) -> None:
    log: list[Any] = []
    request = UploadRequest(runs, engine=ENGINE, executor=ExecutorChoice("recording"), notifications=QUIET)
    with pytest.raises(Declined):
        upload(request, host=recording_host(log), confirm=lambda prepared: False)

    (worker,) = spawned(log)
    assert "start" not in log
    assert not worker.is_alive()
    assert list_tree(upload_s3, upload_bucket) == {}


def test_other_settings_or_another_endpoint_start_new_workers() -> None:
    def endpoint(name: str) -> Endpoint:
        return Endpoint(name, "http://127.0.0.1:9", "us-east-1", Credentials("key-id", "not-a-secret"))

    early = {"local": endpoint("local")}
    for settings, endpoints in (
        (EngineSettings(processes=1, concurrency=3), early),  # other settings
        (ENGINE, {**early, "upload": endpoint("upload")}),  # an endpoint the workers were not given
    ):
        log: list[Any] = []
        executor = RecordingExecutor(log)
        executor.start_early(early, ENGINE)
        executor.start(endpoints, settings)
        first, second = spawned(log)
        assert not first.is_alive() and second.is_alive()
        assert executor.workers[0].process is second and executor.endpoints == endpoints
        executor.stop(cancel=True)
        assert not second.is_alive()

    log = []
    executor = RecordingExecutor(log)
    executor.start_early({**early, "upload": endpoint("upload")}, ENGINE)
    executor.start(early, ENGINE)  # fewer endpoints, same settings: the early workers serve
    assert len(spawned(log)) == 1 and spawned(log)[0].pid != os.getpid()
    executor.stop(cancel=True)
