"""The job API on its own (no command line): the confirmation callback, subscribers, events, reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from drtransfer.engine import EngineSettings
from drtransfer.events import Event
from drtransfer.jobs import CarRequest, Declined, JobSubscriber, Notifications, UploadRequest, package_cars, upload
from drtransfer.locals3 import SeaweedServer
from drtransfer.runconfig import RunConfig
from tests.conftest import list_tree

ENGINE = EngineSettings(processes=0, concurrency=4)
QUIET = Notifications(environ={})


class Recorder(JobSubscriber):
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.events: list[Event] = []

    def on_start(self, plans: Sequence[Any], **kwargs: Any) -> None:
        self.calls.append("start")

    def on_prepared(self, prepared: Sequence[Any], **kwargs: Any) -> None:
        self.calls.append(f"prepared {len(prepared)}")

    def on_model_done(self, result: Any, **kwargs: Any) -> None:
        self.calls.append(f"done {result.model_id}")

    def on_event(self, event: Event, **kwargs: Any) -> None:
        self.events.append(event)


def test_a_declined_confirmation_writes_nothing(
    runs: list[RunConfig], upload_s3: SeaweedServer, upload_bucket: str
) -> None:
    asked: list[int] = []

    def no(prepared: Sequence[Any]) -> bool:
        asked.append(len(prepared))
        return False

    with pytest.raises(Declined):
        upload(UploadRequest(runs, engine=ENGINE, notifications=QUIET), confirm=no)
    assert asked == [2]  # asked once, for both runs
    assert list_tree(upload_s3, upload_bucket) == {}


def test_subscribers_get_engine_progress_and_the_job_events_in_order(runs: list[RunConfig]) -> None:
    recorder = Recorder()
    report = upload(UploadRequest(runs, engine=ENGINE, notifications=QUIET), subscribers=[recorder])

    assert report.ok and [o.result.status for o in report.outcomes] == ["ok", "ok"]
    assert recorder.calls[:2] == ["prepared 2", "start"]
    assert sorted(recorder.calls[2:]) == ["done 0", "done 1"]
    names = [event.name for event in recorder.events]
    assert names[0] == "batch_started" and names[-1] == "batch_finished"
    assert names.count("checkpoint_selected") == 2 and names.count("model_uploaded") == 2


def test_a_dry_run_is_never_confirmed_and_writes_nothing(
    runs: list[RunConfig], upload_s3: SeaweedServer, upload_bucket: str
) -> None:
    def never(prepared: Sequence[Any]) -> bool:
        raise AssertionError("a dry run asks nothing")

    dry = EngineSettings(processes=0, dry_run=True)
    report = upload(UploadRequest(runs, dry_run=True, engine=dry, notifications=QUIET), confirm=never)
    assert [o.result.status for o in report.outcomes] == ["dry-run", "dry-run"] and report.ok
    assert list_tree(upload_s3, upload_bucket) == {}


def test_car_packages_through_the_job(runs: list[RunConfig], upload_s3: SeaweedServer, upload_bucket: str) -> None:
    report = package_cars(CarRequest(runs, checkpoint="best", notifications=QUIET))
    assert report.ok
    tree = list_tree(upload_s3, upload_bucket)
    assert {"alpha-up/alpha-up.tar.gz", "beta-up/beta-up.tar.gz"} <= set(tree)
