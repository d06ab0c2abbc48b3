"""The example plugin (docs/example-plugin), installed in the environment: discovered through its entry
point, used by `drtransfer upload` against real SeaweedFS servers, and disabled."""

from __future__ import annotations

import json
from pathlib import Path

import drtransfer_example
import pytest

from drtransfer.errors import ConfigError, ModelError
from drtransfer.events import BatchStarted, CheckpointSelected
from drtransfer.operations import ObjectLocation
from drtransfer.plan import plan_model
from drtransfer.plugins import get_plugin_manager
from drtransfer.samples import checkpoint_name
from tests.conftest import list_tree
from tests.plugins.conftest import PREFIX, TARGET, DrfcRun
from tests.plugins.factory import make_inventory, make_run

CHECKPOINT_SUFFIXES = (".data-00000-of-00001", ".index", ".meta")


def uploaded_checkpoints(drfc: DrfcRun) -> set[str]:
    keys = list_tree(drfc.upload, drfc.upload_bucket, f"{TARGET}/model/")
    return {key.rsplit("/", 1)[1].split(".ckpt")[0] for key in keys if ".ckpt." in key}


def test_the_example_is_an_installed_entry_point_plugin() -> None:
    host = get_plugin_manager(environ={})
    assert host.pm.get_plugin("example") is drtransfer_example
    model = make_inventory((3, 5, 8), missing={3: [".meta"]})
    selection = host.select_checkpoint("oldest", model, model.run)
    assert selection.checkpoint.number == 5
    assert selection.explanation == f"oldest: {checkpoint_name(5)} (lowest of 2 complete checkpoint(s))"
    with pytest.raises(ModelError, match="holds no complete checkpoint"):
        empty = make_inventory(
            (4,),
            missing={4: ["pb"]},
            best=None,
            last=None,
            index={"last_checkpoint": None, "best_checkpoint": {"name": checkpoint_name(4)}},
        )
        host.select_checkpoint("oldest", empty, empty.run)


def test_disabling_the_example_removes_its_selector() -> None:
    host = get_plugin_manager(environ={"DRTRANSFER_DISABLE_PLUGINS": "example"})
    model = make_inventory()
    with pytest.raises(ConfigError) as info:
        host.select_checkpoint("oldest", model, model.run)
    assert "Unknown checkpoint expression 'oldest'" in str(info.value)
    assert "oldest:" not in str(info.value)
    assert host.notify_implementations() == []


def test_the_example_notifier_appends_json_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "events.jsonl"
    events = [
        BatchStarted(command="upload", runs=["0"], bytes_planned=42),
        CheckpointSelected(run_id="0", checkpoint="1_Step-3620.ckpt", explanation="oldest: 1_Step-3620.ckpt"),
    ]
    host = get_plugin_manager(environ={})
    (send,) = [send for name, send in host.notify_implementations() if name == "example"]
    send(events[0])  # unset: nothing written
    assert not log.exists()
    monkeypatch.setenv("DRTRANSFER_EXAMPLE_LOG", str(log))
    for event in events:
        send(event)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["batch_started", "checkpoint_selected"]
    assert lines[0]["properties"] == {"command": "upload", "runs": ["0"], "bytes_planned": 42}
    assert lines[1]["properties"]["explanation"] == "oldest: 1_Step-3620.ckpt"


def test_the_example_plan_extension_is_opt_in() -> None:
    simtrace = {"training-simtrace/0-iteration.csv": b"a,b\n", "1/training-simtrace/3-iteration.csv": b"c\n"}
    host = get_plugin_manager(environ={})
    for values, expected in (({}, set()), ({"DRTRANSFER_EXAMPLE_COPY_SIMTRACE": "1"}, set(simtrace))):
        model = make_inventory((1, 2), extra=simtrace, run=make_run(values=values))
        plan = plan_model(model, host.select_checkpoint("last", model, model.run), ObjectLocation("upload", "t", "up"))
        before = plan.target_keys()
        host.extend_plan(plan, model, model.run)
        assert {key.removeprefix("up/") for key in plan.target_keys() - before} == expected


# ---- end to end: `drtransfer upload` with the installed example plugin ----------------------------


def test_upload_uses_the_example_selector_end_to_end(drfc_run: DrfcRun, tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    result = drfc_run.upload_cmd("--checkpoint", "oldest", "-f", "--json", DRTRANSFER_EXAMPLE_LOG=str(log))
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(text) for text in result.stdout.splitlines()]
    oldest = checkpoint_name(1)
    assert line["status"] == "ok"
    assert line["checkpoint"] == oldest
    assert line["selection"] == f"oldest: {oldest} (lowest of 4 complete checkpoint(s))"
    assert uploaded_checkpoints(drfc_run) == {oldest.removesuffix(".ckpt")}
    tree = list_tree(drfc_run.upload, drfc_run.upload_bucket, f"{TARGET}/")
    assert tree[f"{TARGET}/model/.coach_checkpoint"] == oldest.encode()
    source = list_tree(drfc_run.local, drfc_run.local_bucket, f"{PREFIX}/model/")
    for suffix in CHECKPOINT_SUFFIXES:
        assert tree[f"{TARGET}/model/{oldest}{suffix}"] == source[f"{PREFIX}/model/{oldest}{suffix}"]
    # the example's notifier got every event of the batch, the selection explained
    events = [json.loads(text) for text in log.read_text().splitlines()]
    assert [event["event"] for event in events] == [
        "batch_started",
        "checkpoint_selected",
        "model_uploaded",
        "batch_finished",
    ]
    assert events[1]["properties"]["explanation"] == line["selection"]


def test_upload_with_the_example_disabled_fails_before_copying(drfc_run: DrfcRun) -> None:
    for disable in (["--disable-plugin", "example"], []):
        env = {} if disable else {"DRTRANSFER_DISABLE_PLUGINS": "example"}
        result = drfc_run.upload_cmd("--checkpoint", "oldest", "-f", *disable, **env)
        assert result.returncode == 2, result.stderr
        assert "Unknown checkpoint expression 'oldest'; known expressions: last: " in result.stderr
        assert "metric:NAME:" in result.stderr
    assert list_tree(drfc_run.upload, drfc_run.upload_bucket) == {}


def test_upload_metric_selection_is_explained_in_the_dry_run(drfc_run: DrfcRun) -> None:
    result = drfc_run.upload_cmd("--checkpoint", "metric:progress", "-d")
    assert result.returncode == 0, result.stderr
    chosen = checkpoint_name(9)
    assert (  # the Ready line wraps a long explanation: compare the words
        f"metric:progress: {chosen} (mean evaluation progress 44.5 % over 2 episode(s); "
        "best of 4 evaluated complete checkpoint(s))" in " ".join(result.stderr.split())
    )
    assert f"/{TARGET}/model/{chosen}.index" in result.stdout
    assert list_tree(drfc_run.upload, drfc_run.upload_bucket) == {}
    malformed = drfc_run.upload_cmd("--checkpoint", "metric:speed", "-d")
    assert malformed.returncode == 2
    assert "Malformed checkpoint expression 'metric:speed'" in malformed.stderr


def test_upload_copies_simtrace_through_the_example_plan_extension(drfc_run: DrfcRun) -> None:
    client = drfc_run.local.client()
    client.put_object(Bucket=drfc_run.local_bucket, Key=f"{PREFIX}/training-simtrace/0-iteration.csv", Body=b"x,y\n")
    result = drfc_run.upload_cmd("-f", DRTRANSFER_EXAMPLE_COPY_SIMTRACE="1")
    assert result.returncode == 0, result.stderr
    tree = list_tree(drfc_run.upload, drfc_run.upload_bucket, f"{TARGET}/training-simtrace/")
    assert tree == {f"{TARGET}/training-simtrace/0-iteration.csv": b"x,y\n"}
