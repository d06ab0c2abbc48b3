"""Choosing the executor: the registry hook, ``--executor``/``--ray-address`` and their variables, and a
run file's ``DRTRANSFER_NODE`` reaching the Ray executor through the upload job."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from drtransfer import hookimpl
from drtransfer.config import load_runs
from drtransfer.engine import EngineSettings
from drtransfer.engine.executor import ExecutorChoice
from drtransfer.engine.local_executor import LocalExecutor
from drtransfer.errors import ConfigError
from drtransfer.jobs import Notifications, UploadRequest, upload
from drtransfer.locals3 import SeaweedServer
from drtransfer.plugins import get_plugin_manager
from drtransfer.registry import Registry
from tests.infra.drfc import seed_drfc
from tests.scaleout.conftest import RayCluster


class Threads:
    @hookimpl
    def drtransfer_register_executors(self, register: Registry[Any]) -> None:
        register("threads", lambda choice, settings: (LocalExecutor(), settings), "threads of this process")


def test_hook_drtransfer_register_executors() -> None:
    host = get_plugin_manager(load_entrypoints=False, extra_plugins=[("threads-plugin", Threads())])
    executors = host.executors()
    assert executors.names() == ["local", "threads"]
    assert {r.name: r.plugin for r in executors} == {"local": "drtransfer.engine.builtin", "threads": "threads-plugin"}
    with pytest.raises(ConfigError, match=r"^Unknown executor 'nope'; known: local, threads\.$"):
        executors.get("nope")


def test_the_ray_plugin_is_found_through_its_entry_point() -> None:
    entries = {r.name: r for r in get_plugin_manager(environ={}).executors()}
    assert entries["ray"].plugin == "ray" and "DRTRANSFER_NODE" in entries["ray"].description


def test_flags_win_over_the_variables() -> None:
    environ = {"DRTRANSFER_EXECUTOR": "ray", "RAY_ADDRESS": "10.0.0.1:6379"}
    assert ExecutorChoice.resolve(environ={}) == ExecutorChoice("local", None)
    assert ExecutorChoice.resolve(environ=environ) == ExecutorChoice("ray", "10.0.0.1:6379")
    assert ExecutorChoice.resolve("local", "auto", environ) == ExecutorChoice("local", "auto")


@pytest.fixture
def two_runs(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:  # fmt: skip
    setup = seed_drfc(tmp_path / "drfc", local_s3, upload_s3, local_bucket, upload_bucket, [("0", "m0"), ("1", "m1")])
    monkeypatch.setenv("DRTRANSFER_STATE_DIR", str(tmp_path / "state"))
    return setup


def test_an_unknown_executor_is_refused_before_anything_runs(two_runs: Any, upload_s3: SeaweedServer) -> None:
    runs = load_runs(two_runs.files.run_files, environ=dict(two_runs.files.environ))
    request = UploadRequest(runs, executor=ExecutorChoice("nope"), notifications=Notifications(environ={}))
    with pytest.raises(ConfigError, match=r"^Unknown executor 'nope'; known: local, ray\.$"):
        upload(request)
    assert upload_s3.client().list_objects_v2(Bucket=two_runs.upload_bucket).get("KeyCount", 0) == 0


def test_drtransfer_node_in_a_run_file_places_the_run(
    two_runs: Any, ray_cluster: RayCluster, caplog: pytest.LogCaptureFixture
) -> None:
    for run_file, node in zip(two_runs.files.run_files, ("node-a", "node-z"), strict=True):
        with run_file.open("a") as out:
            out.write(f"DRTRANSFER_NODE={node}\n")
    with caplog.at_level(logging.WARNING):
        runs = load_runs(two_runs.files.run_files, environ=dict(two_runs.files.environ))
    assert [run.node for run in runs] == ["node-a", "node-z"]
    assert not [w for run in runs for w in run.warnings if "DRTRANSFER_NODE" in w]  # a known name
    assert "DRTRANSFER_NODE" not in caplog.text

    engine = EngineSettings(processes=1, concurrency=2)
    request = UploadRequest(
        runs, engine=engine, executor=ExecutorChoice("ray"), notifications=Notifications(environ={})
    )
    report = upload(request)

    placed, nowhere = report.outcomes
    assert placed.result.status == "ok", placed.result.error
    assert nowhere.result.status == "failed"  # no node named node-z: one sentence, nothing written
    errors = {op.error for op in nowhere.result.operations if op.error} | {nowhere.result.error}
    assert any("No node of the Ray cluster named 'node-z' (DRTRANSFER_NODE) is running" in str(e) for e in errors)


def test_the_command_refuses_an_unknown_executor(two_runs: Any) -> None:
    done = two_runs.run("upload", "--executor", "nope", "--ray-address", "auto", *two_runs.upload_args(), "-f")
    assert done.returncode == 2
    assert "Unknown executor 'nope'; known: local, ray." in done.stderr
    done = two_runs.run("upload", *two_runs.upload_args(), "-f", env=two_runs.env(DRTRANSFER_EXECUTOR="nope"))
    assert done.returncode == 2 and "Unknown executor 'nope'" in done.stderr
