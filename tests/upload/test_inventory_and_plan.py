"""Model inspection against a real SeaweedFS (complete checkpoints, metadata, missing pieces named by URL), and
the pure plan built from it: the importable layout with the commit objects last, wiping only inside the target."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from drtransfer.checkpoints import Selection
from drtransfer.errors import ModelError
from drtransfer.inventory import ModelInventory, inspect_model
from drtransfer.locals3 import SeaweedServer
from drtransfer.operations import DeleteObject, ObjectLocation, PutBytes
from drtransfer.plan import add_wipe, plan_model
from drtransfer.plugins import get_plugin_manager
from drtransfer.runconfig import RunConfig
from drtransfer.samples import checkpoint_name, seed_model

SCALE = 0.02  # checkpoint files of ~1 MiB: the layout is what matters here


def make_run(server: SeaweedServer, bucket: str, prefix: str, **changes: Any) -> RunConfig:
    values: dict[str, Any] = {
        "run_id": "0",
        "local": server.endpoint("local"),
        "local_bucket": bucket,
        "model_prefix": prefix,
        "upload": server.endpoint("upload"),
        "upload_bucket": "target-bucket",
        "upload_prefix": f"{prefix}-1",
        "reward_key": "custom_files/reward_function.py",
        "metrics_prefix": f"{prefix}/metrics",
        "region": "us-east-1",
    }
    values.update(changes)
    return RunConfig(**values)


def inventory(server: SeaweedServer, bucket: str, prefix: str, **changes: Any) -> ModelInventory:
    return inspect_model(make_run(server, bucket, prefix, **changes), server.client())


def test_inspection_finds_complete_checkpoints_and_metadata(local_s3: SeaweedServer, local_bucket: str) -> None:
    seed_model(local_s3.client(), local_bucket, "m", checkpoints=(1, 2, 10, 11), scale=SCALE)
    local_s3.client().delete_object(Bucket=local_bucket, Key="m/model/model_2.pb")
    inv = inventory(local_s3, local_bucket, "m")
    assert sorted(inv.checkpoints) == [1, 2, 10, 11]
    assert [c.number for c in inv.complete_checkpoints] == [1, 10, 11]
    assert inv.checkpoints[2].missing == ["model_2.pb"]
    assert inv.metadata["action_space_type"] in ("discrete", "continuous")
    assert inv.reward_function.location.key == "m/reward_function.py"
    assert {o.location.key.rsplit("/", 1)[1] for o in inv.metrics} >= {"TrainingMetrics.json"}


def test_checkpoint_numbers_match_exactly_never_as_a_glob(local_s3: SeaweedServer, local_bucket: str) -> None:
    seed_model(local_s3.client(), local_bucket, "m", checkpoints=(1, 10, 11, 100), scale=SCALE)
    inv = inventory(local_s3, local_bucket, "m")
    selection = inv.selection_of(inv.checkpoint(1), "step: 1")
    plan = plan_model(inv, selection, ObjectLocation("upload", "target-bucket", "out"))
    model_keys = sorted(op.target.key for op in plan.operations if op.target.key.startswith("out/model/"))
    assert model_keys == sorted(
        [f"out/model/{checkpoint_name(1)}{s}" for s in (".data-00000-of-00001", ".index", ".meta")]
        + [
            "out/model/model_1.pb",
            "out/model/model_metadata.json",
            "out/model/deepracer_checkpoints.json",
            "out/model/.coach_checkpoint",
        ]
    )


def test_plan_is_the_importable_layout_with_commit_objects_last(local_s3: SeaweedServer, local_bucket: str) -> None:
    seeded = seed_model(local_s3.client(), local_bucket, "m", checkpoints=(3, 4, 5), best=4, scale=SCALE)
    inv = inventory(local_s3, local_bucket, "m")
    selection = get_plugin_manager(load_entrypoints=False).select_checkpoint("last", inv, inv.run)
    assert selection.checkpoint.number == 5
    plan = plan_model(inv, selection, ObjectLocation("upload", "target-bucket", "m-1"))
    name = checkpoint_name(5)
    expected = {
        f"model/{name}.data-00000-of-00001",
        f"model/{name}.index",
        f"model/{name}.meta",
        "model/model_5.pb",
        "model/model_metadata.json",
        "model/deepracer_checkpoints.json",
        "model/.coach_checkpoint",
        "reward_function.py",
        "training_params.yaml",
        "ip/hyperparameters.json",
        "model_metadata.json",
        *(key for key in seeded.sizes if key.startswith("metrics/")),
    }
    assert {op.target.key.removeprefix("m-1/") for op in plan.operations} == expected
    commits = [op.target.key.removeprefix("m-1/") for op in plan.operations if op.commit]
    assert commits == ["model/deepracer_checkpoints.json", "model/.coach_checkpoint", "model_metadata.json"]
    assert all(op.commit for op in plan.operations[-3:])
    by_key = {op.target.key.removeprefix("m-1/"): op for op in plan.operations}
    index = by_key["model/deepracer_checkpoints.json"]
    assert isinstance(index, PutBytes)
    entry = json.loads(index.body)
    assert entry["last_checkpoint"] == entry["best_checkpoint"]
    assert entry["last_checkpoint"]["name"] == name
    coach = by_key["model/.coach_checkpoint"]
    assert isinstance(coach, PutBytes) and coach.body == name.encode()
    params = by_key["training_params.yaml"]
    assert isinstance(params, PutBytes)
    yaml_data = yaml.safe_load(params.body)
    assert yaml_data["SAGEMAKER_SHARED_S3_BUCKET"] == "target-bucket"
    assert yaml_data["SAGEMAKER_SHARED_S3_PREFIX"] == "m-1"
    assert yaml_data["METRICS_S3_OBJECT_KEY"] == "m-1/metrics/TrainingMetrics.json"
    assert yaml_data["REWARD_FILE_S3_KEY"] == "m-1/reward_function.py"
    assert yaml_data["SIMTRACE_S3_PREFIX"] == "m-1/training-simtrace"
    assert yaml_data["WORLD_NAME"] == "reInvent2019_track"  # kept from the source, not the current env
    # Both metadata files are the bytes the inspection read and checked, put without reading the source again.
    source_metadata = local_s3.client().get_object(Bucket=local_bucket, Key="m/model/model_metadata.json")["Body"]
    expected_metadata = source_metadata.read()
    for relative in ("model_metadata.json", "model/model_metadata.json"):
        metadata = by_key[relative]
        assert isinstance(metadata, PutBytes) and metadata.body == expected_metadata
        assert metadata.content_type == "application/json"


def test_training_params_generated_only_when_the_source_has_none(local_s3: SeaweedServer, local_bucket: str) -> None:
    seed_model(local_s3.client(), local_bucket, "m", checkpoints=(1,), scale=SCALE, with_training_params=False)
    inv = inventory(local_s3, local_bucket, "m", values={"DR_WORLD_NAME": "2022_april_pro", "DR_CAR_COLOR": "Blue"})
    plan = plan_model(inv, inv.selection_of(inv.checkpoint(1), "x"), ObjectLocation("upload", "t", "p"))
    params = next(op for op in plan.operations if op.target.key == "p/training_params.yaml")
    assert isinstance(params, PutBytes)
    data = yaml.safe_load(params.body)
    assert data["WORLD_NAME"] == "2022_april_pro" and data["CAR_COLOR"] == "Blue"
    assert data["SAGEMAKER_SHARED_S3_BUCKET"] == "t" and data["SAGEMAKER_SHARED_S3_PREFIX"] == "p"


def test_reward_function_falls_back_to_the_reward_key(local_s3: SeaweedServer, local_bucket: str) -> None:
    client = local_s3.client()
    seed_model(client, local_bucket, "m", checkpoints=(1,), scale=SCALE)
    client.delete_object(Bucket=local_bucket, Key="m/reward_function.py")
    client.put_object(
        Bucket=local_bucket, Key="custom_files/reward_function.py", Body=b"def reward_function(p): return 1.0\n"
    )
    inv = inventory(local_s3, local_bucket, "m")
    assert inv.reward_function.location.key == "custom_files/reward_function.py"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            "model/deepracer_checkpoints.json",
            "checkpoint index (written after the first evaluation) is missing: nothing at s3://{b}/m/model/deepracer_checkpoints.json",
        ),
        ("model/model_metadata.json", "model metadata is missing: nothing at s3://{b}/m/model/model_metadata.json"),
        ("ip/hyperparameters.json", "hyperparameters file is missing: nothing at s3://{b}/m/ip/hyperparameters.json"),
        (
            "reward_function.py",
            "nothing at s3://{b}/m/reward_function.py nor at s3://{b}/custom_files/reward_function.py",
        ),
        ("metrics/", "no objects under s3://{b}/m/metrics/"),
    ],
)
def test_each_missing_piece_names_the_url_it_looked_for(
    local_s3: SeaweedServer, local_bucket: str, damage: str, message: str
) -> None:
    client = local_s3.client()
    seeded = seed_model(client, local_bucket, "m", checkpoints=(1,), scale=SCALE)
    for key in seeded.sizes:
        if key == damage or (damage.endswith("/") and key.startswith(damage)):
            client.delete_object(Bucket=local_bucket, Key=f"m/{key}")
    with pytest.raises(ModelError) as caught:
        inventory(local_s3, local_bucket, "m")
    assert message.format(b=local_bucket) in str(caught.value)


def test_empty_prefix_and_malformed_files_are_one_sentence(local_s3: SeaweedServer, local_bucket: str) -> None:
    client = local_s3.client()
    with pytest.raises(ModelError, match=r"No model found at s3://.*/nothing-here/: the prefix is empty"):
        inventory(local_s3, local_bucket, "nothing-here")
    seed_model(client, local_bucket, "m", checkpoints=(1,), scale=SCALE)
    client.put_object(Bucket=local_bucket, Key="m/model/deepracer_checkpoints.json", Body=b"{not json")
    with pytest.raises(ModelError, match=r"deepracer_checkpoints.json is not valid JSON"):
        inventory(local_s3, local_bucket, "m")
    client.put_object(
        Bucket=local_bucket,
        Key="m/model/deepracer_checkpoints.json",
        Body=json.dumps({"last_checkpoint": {"name": checkpoint_name(1)}}).encode(),
    )
    client.put_object(Bucket=local_bucket, Key="m/model/model_metadata.json", Body=b"[1, 2]")
    with pytest.raises(ModelError, match=r"model_metadata.json has no action_space"):
        inventory(local_s3, local_bucket, "m")


def test_checkpoint_files_deleted_since_the_index_was_written(local_s3: SeaweedServer, local_bucket: str) -> None:
    client = local_s3.client()
    seed_model(client, local_bucket, "m", checkpoints=(1, 2), scale=SCALE)
    client.delete_object(Bucket=local_bucket, Key=f"m/model/{checkpoint_name(2)}.index")
    inv = inventory(local_s3, local_bucket, "m")
    with pytest.raises(ModelError, match=r"names 2_Step-.*its files were deleted since it was written.*\.index"):
        get_plugin_manager(load_entrypoints=False).select_checkpoint("last", inv, inv.run)
    with pytest.raises(ModelError, match=r"Checkpoint 7 is not in .* \(complete checkpoints: 1\)"):
        inv.checkpoint(7)


def test_wipe_deletes_only_inside_the_target_prefix(local_s3: SeaweedServer, local_bucket: str) -> None:
    seed_model(local_s3.client(), local_bucket, "m", checkpoints=(1,), scale=SCALE)
    inv = inventory(local_s3, local_bucket, "m")
    selection: Selection = inv.selection_of(inv.checkpoint(1), "x")
    plan = plan_model(inv, selection, ObjectLocation("upload", "t", "m-1"))
    add_wipe(plan, {"m-1/model/old.ckpt.index": 5, "m-1/model/model_metadata.json": 9})
    deletes = [op for op in plan.operations if isinstance(op, DeleteObject)]
    assert [d.target.key for d in deletes] == ["m-1/model/old.ckpt.index"]
    with pytest.raises(ModelError, match="outside"):
        add_wipe(plan_model(inv, selection, ObjectLocation("upload", "t", "m-1")), {"m-10/x": 1})
    with pytest.raises(ModelError, match="target prefix is empty"):
        add_wipe(plan_model(inv, selection, ObjectLocation("upload", "t", "")), {"x": 1})
