"""DRoA after the upload: the model copied from the local bucket into DRoA's upload bucket through the
engine with the identity pool's credentials, ``POST /importmodel``, ``--wait``; and every failure after
the upload as one sentence in that model's result."""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path

import botocore.exceptions
import pytest
import yaml

from drtransfer.endpoints import ClientSettings, Credentials, Endpoint, make_s3_client
from drtransfer.engine import EngineSettings, MiB
from drtransfer.events import Event, ImportFinished, ImportSubmitted
from drtransfer.importing import prepare_imports, submit_imports
from drtransfer.operations import ModelResult
from drtransfer.samples import checkpoint_name
from tests.conftest import droa_values, list_tree
from tests.importers.conftest import Runs, Secrets, options
from tests.infra.droa_server import FakeDroa


def imported_tree(droa: FakeDroa, s3_path: str) -> dict[str, bytes]:
    return {k.removeprefix(s3_path + "/"): v for k, v in list_tree(droa.seaweed, droa.bucket, s3_path + "/").items()}


def test_several_runs_are_copied_imported_and_waited_for(runs: Runs, droa: FakeDroa, tmp_path: Path) -> None:
    runs.values.update(droa_values(droa))
    models = [runs.seed("0", "alpha"), runs.seed("1", "beta", checkpoint="best"),
              runs.seed("2", "gamma", world="2022_april_open_ccw")]
    events: list[Event] = []
    chosen = options(tmp_path, Secrets(), description="Trained with DRfC")
    items = prepare_imports(runs.host, models, target=None, name=None, options=chosen)
    uploads = {m.run.run_id: ModelResult(m.run.run_id, "ok") for m in models}
    results = submit_imports(items, uploads, wait=True, notify=events.append)

    assert [(r.run_id, r.status, r.service_status) for r in results] == [
        ("0", "ready", "READY"), ("1", "ready", "READY"), ("2", "ready", "READY")]
    assert {m.name for m in droa.models} == {"alpha-up", "beta-up", "gamma-up"}
    for result, model in zip(results, models, strict=True):
        record = next(m for m in droa.models if m.model_id == result.model_id)
        assert record.description == "Trained with DRfC"
        assert result.source == f"s3://{droa.bucket}/{record.s3_path}"
        assert record.s3_path.startswith("uploads/models/")
        tree = imported_tree(droa, record.s3_path)
        src = runs.seeded[model.run.run_id]
        number = src.best if model.run.run_id == "1" else src.last
        name = checkpoint_name(number)
        assert set(tree) >= {
            "model_metadata.json", "reward_function.py", "training_params.yaml", "hyperparameters.json",
            "ip/hyperparameters.json", "model/model_metadata.json", "model/deepracer_checkpoints.json",
            "model/.coach_checkpoint", f"model/{name}.data-00000-of-00001", f"model/{name}.index",
            f"model/{name}.meta", f"model/model_{number}.pb", "metrics/training/training-metrics.json",
        }
        assert not [k for k in tree if k.startswith("model/") and "_Step-" in k and not k.startswith(f"model/{name}")]
        assert tree["model/.coach_checkpoint"] == name.encode()
        index = json.loads(tree["model/deepracer_checkpoints.json"])
        assert index["last_checkpoint"]["name"] == index["best_checkpoint"]["name"] == name
        assert tree["metrics/training/training-metrics.json"] == src.files["metrics/TrainingMetrics.json"]
        assert record.metrics_key == f"{record.s3_path}/metrics/training/training-metrics.json"  # DRoA found it
        params = yaml.safe_load(tree["training_params.yaml"])
        assert params["SAGEMAKER_SHARED_S3_BUCKET"] == params["METRICS_S3_BUCKET"] == droa.bucket
        assert params["SAGEMAKER_SHARED_S3_PREFIX"] == record.s3_path
        assert params["MODEL_METADATA_FILE_S3_KEY"] == f"{record.s3_path}/model/model_metadata.json"
        assert params["REWARD_FILE_S3_KEY"] == f"{record.s3_path}/reward_function.py"
        assert isinstance(params["TRACK_DIRECTION_CLOCKWISE"], bool)
    gamma = next(m for m in droa.models if m.name == "gamma-up")
    assert gamma.track == ("2022_april_open", "COUNTER_CLOCKWISE")  # suffix stripped, direction kept
    assert all(m.car == ("DEEPRACER", "RED") for m in droa.models)
    # Only what DRoA's Cognito role allows reached the bucket, all signed with the issued session.
    assert droa.s3_calls and all(status == 200 for _, _, status in droa.s3_calls)
    submitted = [e for e in events if isinstance(e, ImportSubmitted)]
    finished = [e for e in events if isinstance(e, ImportFinished)]
    assert sorted(e.model_id for e in submitted) == sorted(r.model_id or "" for r in results)
    assert {(e.run_id, e.status) for e in finished} == {("0", "READY"), ("1", "READY"), ("2", "READY")}


def test_a_failed_upload_is_not_imported_and_the_others_are(runs: Runs, droa: FakeDroa, tmp_path: Path) -> None:
    runs.values.update(droa_values(droa))
    models = [runs.seed("0", "alpha"), runs.seed("1", "beta")]
    items = prepare_imports(runs.host, models, target="droa", name=None, options=options(tmp_path, Secrets()))
    uploads = {"0": ModelResult("0", "failed", error="boom"), "1": ModelResult("1", "ok")}
    results = submit_imports(items, uploads, wait=False)
    assert (results[0].status, results[0].message) == ("skipped", "not imported because its upload failed.")
    assert results[1].status == "submitted" and results[1].model_id
    assert [m.name for m in droa.models] == ["beta-up"]


def test_a_400_from_the_api_is_that_models_failure(runs: Runs, droa: FakeDroa, tmp_path: Path) -> None:
    runs.values.update(droa_values(droa))
    models = [runs.seed("0", "alpha"), runs.seed("1", "beta")]
    items = prepare_imports(runs.host, models, target="droa", name=None, options=options(tmp_path, Secrets()))
    # A DRoA release whose track list lacks the direction the client's catalog has.
    droa.reject["alpha-up"] = ("Invalid track configuration. Track reInvent2019_track is not available in direction "
                               "COUNTER_CLOCKWISE.")
    results = submit_imports(items, {m.run.run_id: ModelResult(m.run.run_id, "ok") for m in models}, wait=False)
    assert results[0].status == "failed"
    assert results[0].message == (
        "DRoA rejected POST /importmodel: Invalid track configuration. Track reInvent2019_track is not available "
        "in direction COUNTER_CLOCKWISE."
    )
    assert results[1].status == "submitted"


def test_an_unreachable_api_after_the_copy_is_one_sentence(runs: Runs, droa: FakeDroa, tmp_path: Path) -> None:
    runs.values.update(droa_values(droa))
    models = [runs.seed("0", "alpha")]
    items = prepare_imports(runs.host, models, target="droa", name=None, options=options(tmp_path, Secrets()))
    assert droa.api is not None
    droa.api.stop()
    [result] = submit_imports(items, {"0": ModelResult("0", "ok")}, wait=False)
    assert result.status == "failed"
    assert result.message is not None and result.message.startswith(f"Cannot reach the DRoA API at {droa.api_url}")
    assert result.source and result.source.startswith(f"s3://{droa.bucket}/uploads/models/")


def test_wait_reports_droas_import_error_message(runs: Runs, droa: FakeDroa, tmp_path: Path) -> None:
    runs.values.update(droa_values(droa))
    items = prepare_imports(runs.host, [runs.seed("0", "alpha")], target="droa", name=None,
                            options=options(tmp_path, Secrets()))
    droa.fail_validation = "Checkpoint could not be restored: invalid graph."
    [result] = submit_imports(items, {"0": ModelResult("0", "ok")}, wait=True)
    assert (result.status, result.service_status) == ("failed", "ERROR")
    assert result.message == (
        "DRoA reported ERROR: Model validation failed: Checkpoint could not be restored: invalid graph."
    )


def test_credentials_that_run_out_before_the_copy_are_renewed_without_the_password(
    runs: Runs, droa: FakeDroa, tmp_path: Path
) -> None:
    runs.values.update(droa_values(droa))
    secrets = Secrets()
    items = prepare_imports(runs.host, [runs.seed("0", "alpha")], target="droa", name=None,
                            options=options(tmp_path, secrets))
    session = items[0].state.session
    session.current = dataclasses.replace(session.current, expiration=datetime.datetime.now(datetime.UTC))
    [result] = submit_imports(items, {"0": ModelResult("0", "ok")}, wait=False)
    assert result.status == "submitted"
    assert len(secrets.prompts) == 1  # renewed with the in-memory refresh token, not by asking again
    assert session.current.valid_for(60)


def test_the_upload_bucket_front_lets_droa_users_write_but_not_read(droa: FakeDroa) -> None:
    assert droa.issued is not None
    client = make_s3_client(Endpoint("droa", droa.s3_url, droa.region, Credentials(
        droa.issued.access_key, droa.issued.secret_key, droa.issued.session_token)), ClientSettings(max_attempts=1))
    client.put_object(Bucket=droa.bucket, Key="uploads/models/x/a.json", Body=b"{}")
    for call in (lambda: client.head_object(Bucket=droa.bucket, Key="uploads/models/x/a.json"),
                 lambda: client.list_objects_v2(Bucket=droa.bucket, Prefix="uploads/"),
                 lambda: client.list_multipart_uploads(Bucket=droa.bucket)):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            call()
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    tokenless = make_s3_client(Endpoint("droa", droa.s3_url, droa.region, Credentials(
        droa.issued.access_key, droa.issued.secret_key)), ClientSettings(max_attempts=1))
    with pytest.raises(botocore.exceptions.ClientError):
        tokenless.put_object(Bucket=droa.bucket, Key="uploads/models/x/b.json", Body=b"{}")
    assert list(list_tree(droa.seaweed, droa.bucket)) == ["uploads/models/x/a.json"]


def test_a_large_checkpoint_goes_up_in_parts_within_droas_write_only_policy(
    runs: Runs, droa: FakeDroa, tmp_path: Path
) -> None:
    runs.values.update(droa_values(droa))
    model = runs.seed("0", "alpha", scale=0.15)  # a 6.75 MiB .data file
    engine = EngineSettings(processes=0, concurrency=4, part_size=5 * MiB, multipart_threshold=1 * MiB)
    items = prepare_imports(runs.host, [model], target="droa", name=None,
                            options=options(tmp_path, Secrets(), engine=engine))
    [result] = submit_imports(items, {"0": ModelResult("0", "ok")}, wait=True)
    assert result.status == "ready", result.message
    calls = [(method, target) for method, target, _ in droa.s3_calls]
    assert any(method == "POST" and target.endswith("?uploads") for method, target in calls)
    assert sum(1 for method, target in calls if method == "PUT" and "partNumber=" in target) >= 2
    assert all(status == 200 for _, _, status in droa.s3_calls)
    name = checkpoint_name(runs.seeded["0"].last)
    source = runs.local.client().get_object(Bucket=runs.local_bucket, Key=f"alpha/model/{name}.data-00000-of-00001")
    assert result.source is not None
    copied = imported_tree(droa, result.source.removeprefix(f"s3://{droa.bucket}/"))
    assert copied[f"model/{name}.data-00000-of-00001"] == source["Body"].read()
