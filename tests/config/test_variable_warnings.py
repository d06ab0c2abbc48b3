"""load_runs warns about DR_* names DRfC does not know and marks a model prefix that is DRfC's default."""

from __future__ import annotations

from drtransfer.config import load_runs
from drtransfer.drfc_variables import KNOWN_VARIABLES
from tests.config.conftest import DrfcDir

# The DR_* names of DRfC's defaults/template-system.env, template-run.env and template-worker.env (commit
# 2eb1a1f), commented-out lines included.
TEMPLATE_SYSTEM = (
    "DR_CLOUD", "DR_AWS_APP_REGION", "DR_UPLOAD_S3_PROFILE", "DR_UPLOAD_S3_BUCKET", "DR_LOCAL_S3_BUCKET",
    "DR_LOCAL_S3_PROFILE", "DR_GUI_ENABLE", "DR_KINESIS_STREAM_NAME", "DR_CAMERA_MAIN_ENABLE",
    "DR_CAMERA_SUB_ENABLE", "DR_CAMERA_KVS_ENABLE", "DR_ENABLE_EXTRA_KVS_OVERLAY", "DR_SIMAPP_SOURCE",
    "DR_SIMAPP_VERSION", "DR_MINIO_IMAGE", "DR_ANALYSIS_IMAGE", "DR_WORKERS", "DR_ROBOMAKER_MOUNT_LOGS",
    "DR_ROBOMAKER_MOUNT_SIMAPP_DIR", "DR_ROBOMAKER_MOUNT_SCRIPTS_DIR", "DR_CLOUD_WATCH_ENABLE",
    "DR_CLOUD_WATCH_LOG_STREAM_PREFIX", "DR_DOCKER_STYLE", "DR_HOST_X", "DR_WEBVIEWER_PORT", "DR_QUIET_ACTIVATE",
    "DR_DISPLAY", "DR_REMOTE_MINIO_URL", "DR_ROBOMAKER_CUDA_DEVICES", "DR_SAGEMAKER_CUDA_DEVICES",
    "DR_EXPERIMENT_NAME", "DR_TELEGRAF_HOST", "DR_TELEGRAF_PORT", "DR_DROA_URL", "DR_DROA_USERNAME"
)
TEMPLATE_RUN = (
    "DR_RUN_ID", "DR_WORLD_NAME", "DR_RACE_TYPE", "DR_CAR_NAME", "DR_CAR_BODY_SHELL_TYPE", "DR_CAR_COLOR",
    "DR_DISPLAY_NAME", "DR_RACER_NAME", "DR_ENABLE_DOMAIN_RANDOMIZATION", "DR_EVAL_NUMBER_OF_TRIALS",
    "DR_EVAL_IS_CONTINUOUS", "DR_EVAL_MAX_RESETS", "DR_EVAL_OFF_TRACK_PENALTY", "DR_EVAL_COLLISION_PENALTY",
    "DR_EVAL_SAVE_MP4", "DR_EVAL_CHECKPOINT", "DR_EVAL_OPP_S3_MODEL_PREFIX", "DR_EVAL_OPP_CAR_BODY_SHELL_TYPE",
    "DR_EVAL_OPP_CAR_NAME", "DR_EVAL_OPP_DISPLAY_NAME", "DR_EVAL_OPP_RACER_NAME", "DR_EVAL_DEBUG_REWARD",
    "DR_EVAL_RESET_BEHIND_DIST", "DR_EVAL_REVERSE_DIRECTION", "DR_EVAL_RTF", "DR_TRAIN_CHANGE_START_POSITION",
    "DR_TRAIN_REVERSE_DIRECTION", "DR_TRAIN_ALTERNATE_DRIVING_DIRECTION", "DR_TRAIN_START_POSITION_OFFSET",
    "DR_TRAIN_ROUND_ROBIN_ADVANCE_DIST", "DR_TRAIN_MULTI_CONFIG", "DR_TRAIN_MIN_EVAL_TRIALS",
    "DR_TRAIN_BEST_MODEL_METRIC", "DR_TRAIN_RTF", "DR_TRAIN_MAX_STEPS_PER_ITERATION", "DR_LOCAL_S3_MODEL_PREFIX",
    "DR_LOCAL_S3_PRETRAINED", "DR_LOCAL_S3_PRETRAINED_PREFIX", "DR_LOCAL_S3_PRETRAINED_CHECKPOINT",
    "DR_LOCAL_S3_CUSTOM_FILES_PREFIX", "DR_LOCAL_S3_TRAINING_PARAMS_FILE", "DR_LOCAL_S3_EVAL_PARAMS_FILE",
    "DR_LOCAL_S3_MODEL_METADATA_KEY", "DR_LOCAL_S3_HYPERPARAMETERS_KEY", "DR_LOCAL_S3_REWARD_KEY",
    "DR_LOCAL_S3_METRICS_PREFIX", "DR_UPLOAD_S3_PREFIX", "DR_OA_NUMBER_OF_OBSTACLES",
    "DR_OA_MIN_DISTANCE_BETWEEN_OBSTACLES", "DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS", "DR_OA_IS_OBSTACLE_BOT_CAR",
    "DR_OA_OBSTACLE_TYPE", "DR_OA_OBJECT_POSITIONS", "DR_H2B_IS_LANE_CHANGE", "DR_H2B_LOWER_LANE_CHANGE_TIME",
    "DR_H2B_UPPER_LANE_CHANGE_TIME", "DR_H2B_LANE_CHANGE_DISTANCE", "DR_H2B_NUMBER_OF_BOT_CARS",
    "DR_H2B_MIN_DISTANCE_BETWEEN_BOT_CARS", "DR_H2B_RANDOMIZE_BOT_CAR_LOCATIONS", "DR_H2B_BOT_CAR_SPEED",
    "DR_H2B_BOT_CAR_PENALTY"
)
TEMPLATE_WORKER = (
    "DR_WORLD_NAME", "DR_RACE_TYPE", "DR_CAR_COLOR", "DR_ENABLE_DOMAIN_RANDOMIZATION",
    "DR_TRAIN_CHANGE_START_POSITION", "DR_TRAIN_ALTERNATE_DRIVING_DIRECTION", "DR_TRAIN_ROUND_ROBIN_ADVANCE_DIST",
    "DR_TRAIN_START_POSITION_OFFSET", "DR_OA_NUMBER_OF_OBSTACLES", "DR_OA_MIN_DISTANCE_BETWEEN_OBSTACLES",
    "DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS", "DR_OA_IS_OBSTACLE_BOT_CAR", "DR_OA_OBSTACLE_TYPE",
    "DR_OA_OBJECT_POSITIONS", "DR_H2B_IS_LANE_CHANGE", "DR_H2B_LOWER_LANE_CHANGE_TIME",
    "DR_H2B_UPPER_LANE_CHANGE_TIME", "DR_H2B_LANE_CHANGE_DISTANCE", "DR_H2B_NUMBER_OF_BOT_CARS",
    "DR_H2B_MIN_DISTANCE_BETWEEN_BOT_CARS", "DR_H2B_RANDOMIZE_BOT_CAR_LOCATIONS", "DR_H2B_BOT_CAR_SPEED"
)

# Values that make a loadable run; every other variable gets "1".
VALUES = {
    "DR_CLOUD": "local",
    "DR_UPLOAD_S3_BUCKET": "upload-bucket",
    "DR_LOCAL_S3_PROFILE": "minio",
    "DR_UPLOAD_S3_PROFILE": "default",
    "DR_AWS_APP_REGION": "us-east-1",
    "DR_REMOTE_MINIO_URL": "http://mynas:9000",
    "DR_DROA_URL": "https://example.cloudfront.net",
    "DR_LOCAL_S3_MODEL_PREFIX": "model",
    "DR_UPLOAD_S3_PREFIX": "model-1",
    "DR_EXPERIMENT_NAME": "",
    "DR_OA_OBJECT_POSITIONS": "",
}


def env_text(names: tuple[str, ...]) -> str:
    return "".join(f"{name}={VALUES.get(name, '1')}\n" for name in names)


def test_every_variable_of_drfcs_templates_is_known() -> None:
    missing = sorted({*TEMPLATE_SYSTEM, *TEMPLATE_RUN, *TEMPLATE_WORKER} - KNOWN_VARIABLES)
    assert missing == []


def test_drtransfers_own_variables_are_known() -> None:
    own = {
        "DR_UPLOAD_S3_ENDPOINT_URL",
        "DR_UPLOAD_S3_ROLE",
        "DR_DROA_URL",
        "DR_DROA_USERNAME",
        "DR_DEEPRACER_ENDPOINT_URL",
        "DR_DROA_S3_ENDPOINT_URL",
        "DR_DROA_COGNITO_ENDPOINT_URL",
        "DR_LOCAL_ACCESS_KEY_ID",
        "DR_LOCAL_SECRET_ACCESS_KEY",
    }
    assert sorted(own - KNOWN_VARIABLES) == []


def test_files_of_template_names_load_without_warnings(drfc: DrfcDir) -> None:
    drfc.write("system.env", env_text(TEMPLATE_SYSTEM))
    run_file = drfc.write("run.env", env_text(TEMPLATE_RUN))
    (run,) = load_runs([run_file], environ=drfc.environ)
    assert run.warnings == ()
    assert run.source_default is False


def test_a_misspelt_name_is_warned_with_the_nearest_known_name(drfc: DrfcDir) -> None:
    system_file = drfc.system("DR_UPLAOD_S3_ROLE=arn:aws:iam::1:role/x\n")
    run_file = drfc.write("run.env", "DR_RUN_ID=0\nDR_LOCAL_S3_MODLE_PREFIX=exp-a\nDR_UPLOAD_S3_PREFIX=exp-a-1\n")
    (run,) = load_runs([run_file], environ=drfc.environ)
    system_line = len(system_file.read_text().splitlines())
    assert run.warnings == (
        f"{system_file} line {system_line}: DR_UPLAOD_S3_ROLE is not a DRfC variable; did you mean DR_UPLOAD_S3_ROLE?",
        f"{run_file} line 2: DR_LOCAL_S3_MODLE_PREFIX is not a DRfC variable; did you mean DR_LOCAL_S3_MODEL_PREFIX?",
    )
    assert run.model_prefix == "rl-deepracer-sagemaker" and run.source_default is True


def test_a_name_like_no_known_one_is_warned_without_a_guess(drfc: DrfcDir) -> None:
    drfc.system()
    run_file = drfc.run("run.env", "0", "m", extra="DR_QQQ=1\nMY_OWN_SETTING=2\n")
    (run,) = load_runs([run_file], environ=drfc.environ)
    assert run.warnings == (f"{run_file} line 13: DR_QQQ is not a DRfC variable; check its spelling.",)


def test_a_prefix_given_on_the_command_line_or_exported_is_not_the_default(drfc: DrfcDir) -> None:
    drfc.system()
    run_file = drfc.write("run.env", "DR_RUN_ID=0\nDR_UPLOAD_S3_PREFIX=up\n")
    (run,) = load_runs([run_file], environ=drfc.environ)
    assert run.source_default is True
    (run,) = load_runs([run_file], environ={**drfc.environ, "DR_LOCAL_S3_MODEL_PREFIX": "exported"})
    assert (run.model_prefix, run.source_default) == ("exported", False)
    (run,) = load_runs([run_file], environ=drfc.environ, overrides={"DR_LOCAL_S3_MODEL_PREFIX": "given"})
    assert (run.model_prefix, run.source_default) == ("given", False)
