"""The uploaded ``training_params.yaml``: the model's own with every S3 field (endpoint included) at the
target, or, for a model without one, what DRfC's training would have written for the run's variables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest
import yaml

from drtransfer.checkpoints import CheckpointIndex
from drtransfer.endpoints import Endpoint
from drtransfer.inventory import ModelInventory
from drtransfer.operations import ObjectLocation, SourceObject
from drtransfer.plan import dump_training_params, training_endpoint_url, training_params_for
from drtransfer.runconfig import RunConfig
from tests.conftest import list_tree
from tests.infra.drfc import DrfcSetup

LOCAL = Endpoint("local", "http://localhost:9000", "us-east-1", None)
UPLOAD = Endpoint("upload", "http://target.example:8333", "us-east-1", None)
AWS = Endpoint("upload", None, "us-east-1", None)
TARGET = ObjectLocation("upload", "target-bucket", "model-up")


def make_run(values: Mapping[str, str], *, upload: Endpoint | None = UPLOAD, local: Endpoint = LOCAL) -> RunConfig:
    return RunConfig(
        run_id="0",
        local=local,
        local_bucket="bucket",
        model_prefix="rl-deepracer-sagemaker",
        upload=upload,
        upload_bucket="target-bucket",
        upload_prefix="model-up",
        reward_key="custom_files/reward_function.py",
        metrics_prefix="rl-deepracer-sagemaker/metrics",
        region=values.get("DR_AWS_APP_REGION", "us-east-1"),
        values=dict(values),
    )


def make_inventory(run: RunConfig, training_params: bytes | None = None) -> ModelInventory:
    """An inventory holding only what training_params_for reads: the run and its yaml, if any."""
    location = ObjectLocation("local", run.local_bucket, f"{run.model_prefix}/training_params.yaml")
    params = SourceObject(location, len(training_params or b""), "etag") if training_params is not None else None
    absent = SourceObject(ObjectLocation("local", run.local_bucket, "unused"), 0, "etag")
    return ModelInventory(
        run=run,
        objects={},
        model_files={},
        checkpoints={},
        index=CheckpointIndex(None, None),
        index_url="s3://bucket/unused",
        reward_function=absent,
        model_metadata=absent,
        metadata={},
        metadata_body=b"{}",
        hyperparameters=absent,
        metrics=[],
        training_params=params,
        reader=lambda obj: training_params or b"",
    )


# Expected tables, read from aws-deepracer-community/deepracer-for-cloud
# scripts/training/prepare-config.py at 2eb1a1f1bc0bb52ef13a16c9325281d93af72bb7 (2026-05-04), key by key:
# `config[KEY] = os.environ.get(VARIABLE, DEFAULT)`, the OA keys only for RACE_TYPE OBJECT_AVOIDANCE,
# the H2B keys only for HEAD_TO_BOT, S3_ENDPOINT_URL only when DR_MINIO_URL is set (activate.sh sets it
# for DR_CLOUD local, azure and remote). MULTI_CONFIG is added after the first yaml is written, so a
# single-config yaml never has it. The S3 fields the script fills with the run's own bucket, prefix,
# custom_files keys and DR_MINIO_URL point at the upload target instead.
def target_s3_fields(endpoint_url: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "METRICS_S3_BUCKET": "target-bucket",
        "METRICS_S3_OBJECT_KEY": "model-up/metrics/TrainingMetrics.json",
        "MODEL_METADATA_FILE_S3_KEY": "model-up/model/model_metadata.json",
        "REWARD_FILE_S3_KEY": "model-up/reward_function.py",
        "SAGEMAKER_SHARED_S3_BUCKET": "target-bucket",
        "SAGEMAKER_SHARED_S3_PREFIX": "model-up",
        "SIMTRACE_S3_BUCKET": "target-bucket",
        "SIMTRACE_S3_PREFIX": "model-up",
    }
    if endpoint_url is not None:
        fields["S3_ENDPOINT_URL"] = endpoint_url
    return fields


TIME_TRIAL_DEFAULTS: dict[str, Any] = {
    "AWS_REGION": "us-east-1",
    "JOB_TYPE": "TRAINING",
    "KINESIS_VIDEO_STREAM_NAME": "",
    "ROBOMAKER_SIMULATION_JOB_ACCOUNT_ID": "Dummy",
    "NUM_WORKERS": 1,  # the script's default is the int 1 (DR_WORKERS unset)
    "TRAINING_JOB_ARN": "arn:Dummy",
    "BODY_SHELL_TYPE": "deepracer",
    "CAR_COLOR": "Red",
    "CAR_NAME": "MyCar",
    "RACE_TYPE": "TIME_TRIAL",
    "WORLD_NAME": "LGSWide",
    "DISPLAY_NAME": "racer1",
    "RACER_NAME": "racer1",
    "REVERSE_DIR": False,  # the script's default is the bool False
    "ALTERNATE_DRIVING_DIRECTION": "false",
    "CHANGE_START_POSITION": "true",
    "ROUND_ROBIN_ADVANCE_DIST": "0.05",
    "START_POSITION_OFFSET": "0.00",
    "ENABLE_DOMAIN_RANDOMIZATION": "false",
    "MIN_EVAL_TRIALS": "5",
    "CAMERA_MAIN_ENABLE": "True",
    "CAMERA_SUB_ENABLE": "True",
    "BEST_MODEL_METRIC": "progress",
    "ENABLE_EXTRA_KVS_OVERLAY": "False",
}

# DRfC's template-run.env / template-system.env values, which a real run has.
TEMPLATE_ENV = {
    "DR_AWS_APP_REGION": "eu-west-1",
    "DR_KINESIS_STREAM_NAME": "",
    "DR_WORKERS": "2",
    "DR_WORLD_NAME": "2022_april_pro",
    "DR_CAR_NAME": "FastCar",
    "DR_CAR_BODY_SHELL_TYPE": "deepracer",
    "DR_CAR_COLOR": "Blue",
    "DR_DISPLAY_NAME": "FastCar",
    "DR_RACER_NAME": "FastCar",
    "DR_ENABLE_DOMAIN_RANDOMIZATION": "False",
    "DR_TRAIN_CHANGE_START_POSITION": "True",
    "DR_TRAIN_REVERSE_DIRECTION": "True",
    "DR_TRAIN_ALTERNATE_DRIVING_DIRECTION": "False",
    "DR_TRAIN_START_POSITION_OFFSET": "0.0",
    "DR_TRAIN_ROUND_ROBIN_ADVANCE_DIST": "0.05",
    "DR_TRAIN_MULTI_CONFIG": "False",
    "DR_TRAIN_MIN_EVAL_TRIALS": "5",
    "DR_TRAIN_BEST_MODEL_METRIC": "progress",
    "DR_CAMERA_MAIN_ENABLE": "True",
    "DR_CAMERA_SUB_ENABLE": "False",
    "DR_ENABLE_EXTRA_KVS_OVERLAY": "False",
    "DR_OA_NUMBER_OF_OBSTACLES": "6",
    "DR_OA_MIN_DISTANCE_BETWEEN_OBSTACLES": "2.0",
    "DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS": "False",
    "DR_OA_IS_OBSTACLE_BOT_CAR": "False",
    "DR_OA_OBSTACLE_TYPE": "box_obstacle",
    "DR_OA_OBJECT_POSITIONS": "",
    "DR_H2B_IS_LANE_CHANGE": "False",
    "DR_H2B_LOWER_LANE_CHANGE_TIME": "3.0",
    "DR_H2B_UPPER_LANE_CHANGE_TIME": "5.0",
    "DR_H2B_LANE_CHANGE_DISTANCE": "1.0",
    "DR_H2B_NUMBER_OF_BOT_CARS": "3",
    "DR_H2B_MIN_DISTANCE_BETWEEN_BOT_CARS": "2.0",
    "DR_H2B_RANDOMIZE_BOT_CAR_LOCATIONS": "False",
    "DR_H2B_BOT_CAR_SPEED": "0.2",
    "DR_H2B_BOT_CAR_PENALTY": "5.0",
}

TEMPLATE_COMMON: dict[str, Any] = {
    "AWS_REGION": "eu-west-1",
    "JOB_TYPE": "TRAINING",
    "KINESIS_VIDEO_STREAM_NAME": "",
    "ROBOMAKER_SIMULATION_JOB_ACCOUNT_ID": "Dummy",
    "NUM_WORKERS": "2",
    "TRAINING_JOB_ARN": "arn:Dummy",
    "BODY_SHELL_TYPE": "deepracer",
    "CAR_COLOR": "Blue",
    "CAR_NAME": "FastCar",
    "WORLD_NAME": "2022_april_pro",
    "DISPLAY_NAME": "FastCar",
    "RACER_NAME": "FastCar",
    "REVERSE_DIR": "True",
    "ALTERNATE_DRIVING_DIRECTION": "False",
    "CHANGE_START_POSITION": "True",
    "ROUND_ROBIN_ADVANCE_DIST": "0.05",
    "START_POSITION_OFFSET": "0.0",
    "ENABLE_DOMAIN_RANDOMIZATION": "False",
    "MIN_EVAL_TRIALS": "5",
    "CAMERA_MAIN_ENABLE": "True",
    "CAMERA_SUB_ENABLE": "False",
    "BEST_MODEL_METRIC": "progress",
    "ENABLE_EXTRA_KVS_OVERLAY": "False",
}

CASES = {
    # No DR_* variable beyond the cloud: every default of the script.
    "time-trial-defaults": (
        {"DR_CLOUD": "local"},
        UPLOAD,
        {**TIME_TRIAL_DEFAULTS, **target_s3_fields(UPLOAD.url)},
    ),
    # OBJECT_AVOIDANCE with fixed positions: "progress,lane" tuples separated by ";"; the count of
    # positions replaces DR_OA_NUMBER_OF_OBSTACLES. AWS target: no S3_ENDPOINT_URL.
    "object-avoidance": (
        {
            **TEMPLATE_ENV,
            "DR_CLOUD": "remote",
            "DR_REMOTE_MINIO_URL": "http://nas:9000",
            "DR_RACE_TYPE": "OBJECT_AVOIDANCE",
            "DR_OA_OBJECT_POSITIONS": "0.23,-1;0.46,1;0.67,-1",
        },
        AWS,
        {
            **TEMPLATE_COMMON,
            **target_s3_fields(None),
            "RACE_TYPE": "OBJECT_AVOIDANCE",
            "NUMBER_OF_OBSTACLES": "3",
            "MIN_DISTANCE_BETWEEN_OBSTACLES": "2.0",
            "RANDOMIZE_OBSTACLE_LOCATIONS": "False",
            "IS_OBSTACLE_BOT_CAR": "False",
            "OBSTACLE_TYPE": "box_obstacle",
            "OBJECT_POSITIONS": ["0.23,-1", "0.46,1", "0.67,-1"],
        },
    ),
    # OBJECT_AVOIDANCE without positions and with the OA variables unset: the script's OA defaults.
    "object-avoidance-defaults": (
        {"DR_CLOUD": "azure", "DR_RACE_TYPE": "OBJECT_AVOIDANCE"},
        UPLOAD,
        {
            **TIME_TRIAL_DEFAULTS,
            **target_s3_fields(UPLOAD.url),
            "RACE_TYPE": "OBJECT_AVOIDANCE",
            "NUMBER_OF_OBSTACLES": "6",
            "MIN_DISTANCE_BETWEEN_OBSTACLES": "2.0",
            "RANDOMIZE_OBSTACLE_LOCATIONS": "True",
            "IS_OBSTACLE_BOT_CAR": "false",
            "OBSTACLE_TYPE": "box_obstacle",
        },
    ),
    # HEAD_TO_BOT with bot-car settings (PENALTY_SECONDS comes from DR_H2B_BOT_CAR_PENALTY); the OA
    # variables of the template are not written. The old variable names are the fallbacks of the
    # direction and start-position keys.
    "head-to-bot": (
        {
            **{k: v for k, v in TEMPLATE_ENV.items() if k not in ("DR_TRAIN_ALTERNATE_DRIVING_DIRECTION",
                                                                  "DR_TRAIN_CHANGE_START_POSITION")},
            "DR_CLOUD": "local",
            "DR_RACE_TYPE": "HEAD_TO_BOT",
            "DR_ALTERNATE_DRIVING_DIRECTION": "true",
            "DR_CHANGE_START_POSITION": "false",
            "DR_H2B_IS_LANE_CHANGE": "True",
            "DR_H2B_NUMBER_OF_BOT_CARS": "2",
            "DR_H2B_BOT_CAR_SPEED": "0.4",
        },
        UPLOAD,
        {
            **TEMPLATE_COMMON,
            **target_s3_fields(UPLOAD.url),
            "RACE_TYPE": "HEAD_TO_BOT",
            "ALTERNATE_DRIVING_DIRECTION": "true",
            "CHANGE_START_POSITION": "false",
            "IS_LANE_CHANGE": "True",
            "LOWER_LANE_CHANGE_TIME": "3.0",
            "UPPER_LANE_CHANGE_TIME": "5.0",
            "LANE_CHANGE_DISTANCE": "1.0",
            "NUMBER_OF_BOT_CARS": "2",
            "MIN_DISTANCE_BETWEEN_BOT_CARS": "2.0",
            "RANDOMIZE_BOT_CAR_LOCATIONS": "False",
            "BOT_CAR_SPEED": "0.4",
            "PENALTY_SECONDS": "5.0",
        },
    ),
}

# DRfC's yaml.dump(..., default_style="'"): keys and values quoted ('KEY': 'value', list items - 'value');
# other scalars keep a tag (!!int '1'). Real booleans are written plain (KEY: false), which loads the same.
_DUMPED_LINE = re.compile(r"^('[A-Z0-9_]+': ('.*'|!!int '\d+')|'[A-Z0-9_]+':|- '.*'|[A-Z0-9_]+: (true|false))$")


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_yaml_is_what_drfcs_training_writes_for_the_same_variables(case: str) -> None:
    values, upload, expected = CASES[case]
    run = make_run(values, upload=upload)
    params = training_params_for(make_inventory(run), TARGET, endpoint_url=training_endpoint_url(run))
    assert params == expected
    text = dump_training_params(params).decode()
    assert yaml.safe_load(text) == expected
    bad = [line for line in text.splitlines() if not _DUMPED_LINE.match(line)]
    assert bad == []


MODEL_YAML = (
    b"'AWS_REGION': 'us-east-1'\n'JOB_TYPE': 'TRAINING'\n'S3_ENDPOINT_URL': 'http://minio:9000'\n"
    b"'SAGEMAKER_SHARED_S3_BUCKET': 'bucket'\n'SAGEMAKER_SHARED_S3_PREFIX': 'rl-deepracer-sagemaker'\n"
    b"'TRAINING_JOB_ARN': 'arn:Dummy'\n'WORLD_NAME': 'reInvent2019_track'\n"
)


def test_the_models_endpoint_url_becomes_the_targets_and_goes_for_aws() -> None:
    to_minio = make_run({"DR_CLOUD": "local"}, upload=UPLOAD)
    params = training_params_for(make_inventory(to_minio, MODEL_YAML), TARGET,
                                 endpoint_url=training_endpoint_url(to_minio))
    assert params["S3_ENDPOINT_URL"] == "http://target.example:8333"
    assert params["TRAINING_JOB_ARN"] == "arn:Dummy" and params["WORLD_NAME"] == "reInvent2019_track"

    to_aws = make_run({"DR_CLOUD": "local"}, upload=AWS)
    params = training_params_for(make_inventory(to_aws, MODEL_YAML), TARGET, endpoint_url=training_endpoint_url(to_aws))
    assert "S3_ENDPOINT_URL" not in params
    assert params["SAGEMAKER_SHARED_S3_BUCKET"] == "target-bucket"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"DR_CLOUD": "local"}, "http://minio:9000"),
        ({"DR_CLOUD": "azure"}, "http://minio:9000"),
        ({"DR_CLOUD": "remote", "DR_REMOTE_MINIO_URL": "http://nas:9000"}, "http://nas:9000"),
    ],
)
def test_a_target_on_the_runs_own_store_keeps_the_url_drfcs_containers_use(
    values: dict[str, str], expected: str
) -> None:
    """-L: the snapshot is read by DRfC's containers, which reach the store at DR_MINIO_URL, not at the
    host's URL."""
    run = make_run(values, upload=LOCAL)
    assert training_endpoint_url(run) == expected
    params = training_params_for(make_inventory(run, MODEL_YAML), TARGET, endpoint_url=training_endpoint_url(run))
    assert params["S3_ENDPOINT_URL"] == expected


def test_uploaded_yaml_names_the_target_endpoint_and_a_generated_one_drfcs_keys(drfc: DrfcSetup) -> None:
    client = drfc.local.client()
    own = yaml.safe_load(drfc.models["0"].files["training_params.yaml"])
    own["S3_ENDPOINT_URL"] = "http://minio:9000"
    client.put_object(
        Bucket=drfc.local_bucket,
        Key="alpha/training_params.yaml",
        Body=yaml.safe_dump(own, default_style="'").encode(),
    )
    client.delete_object(Bucket=drfc.local_bucket, Key="beta/training_params.yaml")
    result = drfc.run("upload", *drfc.upload_args("0", "1"), "-f")
    assert result.returncode == 0, result.stderr
    tree = list_tree(drfc.upload, drfc.upload_bucket)

    uploaded = yaml.safe_load(tree["alpha-up/training_params.yaml"])
    assert uploaded["S3_ENDPOINT_URL"] == drfc.upload.url
    assert uploaded["WORLD_NAME"] == own["WORLD_NAME"] and uploaded["CAR_NAME"] == own["CAR_NAME"]

    # run-1.env sets DR_WORLD_NAME=reInvent2019_track and DR_RACE_TYPE=TIME_TRIAL, system.env
    # DR_CLOUD=remote and DR_AWS_APP_REGION; everything else is the script's default.
    generated = yaml.safe_load(tree["beta-up/training_params.yaml"])
    assert generated == {
        **TIME_TRIAL_DEFAULTS,
        "WORLD_NAME": "reInvent2019_track",
        "METRICS_S3_BUCKET": drfc.upload_bucket,
        "METRICS_S3_OBJECT_KEY": "beta-up/metrics/TrainingMetrics.json",
        "MODEL_METADATA_FILE_S3_KEY": "beta-up/model/model_metadata.json",
        "REWARD_FILE_S3_KEY": "beta-up/reward_function.py",
        "SAGEMAKER_SHARED_S3_BUCKET": drfc.upload_bucket,
        "SAGEMAKER_SHARED_S3_PREFIX": "beta-up",
        "SIMTRACE_S3_BUCKET": drfc.upload_bucket,
        "SIMTRACE_S3_PREFIX": "beta-up",
        "S3_ENDPOINT_URL": drfc.upload.url,
    }
