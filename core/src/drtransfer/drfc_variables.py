"""The ``DR_*`` variable names DRfC and deepracer-transfer know; :func:`drtransfer.config.load_runs` warns
about any other ``DR_*`` name in the files it reads.

Read from aws-deepracer-community/deepracer-for-cloud at commit 2eb1a1f (2026-05-04).
"""

from __future__ import annotations

import difflib

# Every DR_* name in defaults/template-system.env, defaults/template-run.env and defaults/template-worker.env,
# commented-out lines included.
TEMPLATE_VARIABLES = frozenset(
    {
        # template-system.env
        "DR_CLOUD",
        "DR_AWS_APP_REGION",
        "DR_UPLOAD_S3_PROFILE",
        "DR_UPLOAD_S3_BUCKET",
        "DR_LOCAL_S3_BUCKET",
        "DR_LOCAL_S3_PROFILE",
        "DR_GUI_ENABLE",
        "DR_KINESIS_STREAM_NAME",
        "DR_CAMERA_MAIN_ENABLE",
        "DR_CAMERA_SUB_ENABLE",
        "DR_CAMERA_KVS_ENABLE",
        "DR_ENABLE_EXTRA_KVS_OVERLAY",
        "DR_SIMAPP_SOURCE",
        "DR_SIMAPP_VERSION",
        "DR_MINIO_IMAGE",
        "DR_ANALYSIS_IMAGE",
        "DR_WORKERS",
        "DR_ROBOMAKER_MOUNT_LOGS",
        "DR_ROBOMAKER_MOUNT_SIMAPP_DIR",
        "DR_ROBOMAKER_MOUNT_SCRIPTS_DIR",
        "DR_DIR",
        "DR_CLOUD_WATCH_ENABLE",
        "DR_CLOUD_WATCH_LOG_STREAM_PREFIX",
        "DR_DOCKER_STYLE",
        "DR_HOST_X",
        "DR_WEBVIEWER_PORT",
        "DR_QUIET_ACTIVATE",
        "DR_DISPLAY",
        "DR_REMOTE_MINIO_URL",
        "DR_ROBOMAKER_CUDA_DEVICES",
        "DR_SAGEMAKER_CUDA_DEVICES",
        "DR_EXPERIMENT_NAME",
        "DR_TELEGRAF_HOST",
        "DR_TELEGRAF_PORT",
        "DR_DROA_URL",
        "DR_DROA_USERNAME",
        # template-run.env (template-worker.env holds a subset of these)
        "DR_RUN_ID",
        "DR_WORLD_NAME",
        "DR_RACE_TYPE",
        "DR_CAR_NAME",
        "DR_CAR_BODY_SHELL_TYPE",
        "DR_CAR_COLOR",
        "DR_DISPLAY_NAME",
        "DR_RACER_NAME",
        "DR_ENABLE_DOMAIN_RANDOMIZATION",
        "DR_EVAL_NUMBER_OF_TRIALS",
        "DR_EVAL_IS_CONTINUOUS",
        "DR_EVAL_MAX_RESETS",
        "DR_EVAL_OFF_TRACK_PENALTY",
        "DR_EVAL_COLLISION_PENALTY",
        "DR_EVAL_SAVE_MP4",
        "DR_EVAL_CHECKPOINT",
        "DR_EVAL_OPP_S3_MODEL_PREFIX",
        "DR_EVAL_OPP_CAR_BODY_SHELL_TYPE",
        "DR_EVAL_OPP_CAR_NAME",
        "DR_EVAL_OPP_DISPLAY_NAME",
        "DR_EVAL_OPP_RACER_NAME",
        "DR_EVAL_DEBUG_REWARD",
        "DR_EVAL_RESET_BEHIND_DIST",
        "DR_EVAL_REVERSE_DIRECTION",
        "DR_EVAL_RTF",
        "DR_TRAIN_CHANGE_START_POSITION",
        "DR_TRAIN_REVERSE_DIRECTION",
        "DR_TRAIN_ALTERNATE_DRIVING_DIRECTION",
        "DR_TRAIN_START_POSITION_OFFSET",
        "DR_TRAIN_ROUND_ROBIN_ADVANCE_DIST",
        "DR_TRAIN_MULTI_CONFIG",
        "DR_TRAIN_MIN_EVAL_TRIALS",
        "DR_TRAIN_BEST_MODEL_METRIC",
        "DR_TRAIN_RTF",
        "DR_TRAIN_MAX_STEPS_PER_ITERATION",
        "DR_LOCAL_S3_MODEL_PREFIX",
        "DR_LOCAL_S3_PRETRAINED",
        "DR_LOCAL_S3_PRETRAINED_PREFIX",
        "DR_LOCAL_S3_PRETRAINED_CHECKPOINT",
        "DR_LOCAL_S3_CUSTOM_FILES_PREFIX",
        "DR_LOCAL_S3_TRAINING_PARAMS_FILE",
        "DR_LOCAL_S3_EVAL_PARAMS_FILE",
        "DR_LOCAL_S3_MODEL_METADATA_KEY",
        "DR_LOCAL_S3_HYPERPARAMETERS_KEY",
        "DR_LOCAL_S3_REWARD_KEY",
        "DR_LOCAL_S3_METRICS_PREFIX",
        "DR_UPLOAD_S3_PREFIX",
        "DR_OA_NUMBER_OF_OBSTACLES",
        "DR_OA_MIN_DISTANCE_BETWEEN_OBSTACLES",
        "DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS",
        "DR_OA_IS_OBSTACLE_BOT_CAR",
        "DR_OA_OBSTACLE_TYPE",
        "DR_OA_OBJECT_POSITIONS",
        "DR_H2B_IS_LANE_CHANGE",
        "DR_H2B_LOWER_LANE_CHANGE_TIME",
        "DR_H2B_UPPER_LANE_CHANGE_TIME",
        "DR_H2B_LANE_CHANGE_DISTANCE",
        "DR_H2B_NUMBER_OF_BOT_CARS",
        "DR_H2B_MIN_DISTANCE_BETWEEN_BOT_CARS",
        "DR_H2B_RANDOMIZE_BOT_CAR_LOCATIONS",
        "DR_H2B_BOT_CAR_SPEED",
        "DR_H2B_BOT_CAR_PENALTY",
    }
)

# The other DR_* names that bin/, scripts/, docker/ and utils/ read or export (activate.sh derivations,
# compose-file variables, fallbacks of the prepare-config.py scripts).
SCRIPT_VARIABLES = frozenset(
    {
        "DR_ALTERNATE_DRIVING_DIRECTION",
        "DR_CHANGE_START_POSITION",
        "DR_COLLISION_PENALTY",
        "DR_CONFIG",
        "DR_CURRENT_PARAMS_FILE",
        "DR_DOCKER_FILE_SEP",
        "DR_DOCKER_MAJOR_VERSION",
        "DR_DROA_DEBUG",
        "DR_EVAL_COMPOSE_FILE",
        "DR_EVAL_OPP_MODEL_PREFIX",
        "DR_EVAL_OPP_S3_METRICS_PREFIX",
        "DR_GAZEBO_ARGS",
        "DR_GAZEBO_RENDER_ENGINE",
        "DR_LOCAL_ACCESS_KEY_ID",
        "DR_LOCAL_PROFILE_ENDPOINT_URL",
        "DR_LOCAL_S3_AUTH_MODE",
        "DR_LOCAL_S3_ENDPOINT_URL",
        "DR_LOCAL_SECRET_ACCESS_KEY",
        "DR_MINIO_COMPOSE_FILE",
        "DR_MINIO_URL",
        "DR_MOUNT_DIR",
        "DR_NGINX_CONF",
        "DR_ROBOMAKER_EVAL_PORT",
        "DR_ROBOMAKER_GUI_PORT",
        "DR_ROBOMAKER_IMAGE",
        "DR_ROBOMAKER_TRAIN_PORT",
        "DR_SAGEMAKER_IMAGE",
        "DR_TRAIN_COMPOSE_FILE",
        "DR_UPLOAD_PROFILE",
        "DR_USE_GUI",
        "DR_VIEWER_HTML",
    }
)

# Names the three templates had in earlier commits (git log -p of defaults/template-*.env): files copied
# from an older DRfC still hold them, and they are not typos.
FORMER_TEMPLATE_VARIABLES = frozenset(
    {
        "DR_COACH_IMAGE",
        "DR_EVAL_ENABLE_RESETS",
        "DR_EVAL_NUMBER_OF_RESETS",
        "DR_GPU_AVAILABLE",
        "DR_KINESIS_STREAM_ENABLE",
        "DR_LOCAL_S3_METRICS_KEY",
        "DR_LOCAL_S3_PARAMS_FILE",
        "DR_LOCAL_S3_TOURNAMENT_JSON_FILE",
        "DR_LOCAL_S3_TOURNAMENT_PARAMS_FILE",
        "DR_NUMBER_OF_EPISODES",
        "DR_OA_NUMBER_OF_PSEUDO_RANDOM_PLACEMENTS",
        "DR_OA_PSEUDO_RANDOMIZE_OBSTACLE_LOCATIONS",
        "DR_ROBOMAKER_IMAGE_TYPE",
        "DR_TARGET_REWARD_SCORE",
        "DR_UPLOAD_MODEL_NAME",
        "DR_UPLOAD_S3_ROLE",
    }
)

# The DR_* names deepracer-transfer and its built-in plugins read beyond DRfC's.
DRTRANSFER_VARIABLES = frozenset(
    {
        "DRTRANSFER_NODE",  # the cluster node that reaches the run's source (--executor ray)
        "DR_UPLOAD_S3_ENDPOINT_URL",  # an S3-compatible upload target (drtransfer.config)
        "DR_UPLOAD_S3_ROLE",  # the console import's role ARN (aws-console importer)
        "DR_DEEPRACER_ENDPOINT_URL",  # the console's service URL (aws-console importer)
        "DR_DROA_S3_ENDPOINT_URL",  # DRoA's S3 service URL (droa importer)
        "DR_DROA_COGNITO_ENDPOINT_URL",  # DRoA's Cognito service URL (droa importer)
        "DR_BACKUP_S3_BUCKET",  # drtransfer backup: the backup bucket (default DR_UPLOAD_S3_BUCKET)
        "DR_BACKUP_S3_PREFIX",  # drtransfer backup: the base prefix of backups (default backups)
        "DR_BACKUP_S3_ENDPOINT_URL",  # drtransfer backup: the backup endpoint (default DR_UPLOAD_S3_ENDPOINT_URL)
        "DR_BACKUP_S3_PROFILE",  # drtransfer backup: the backup profile (default DR_UPLOAD_S3_PROFILE)
    }
)

KNOWN_VARIABLES = TEMPLATE_VARIABLES | SCRIPT_VARIABLES | FORMER_TEMPLATE_VARIABLES | DRTRANSFER_VARIABLES
_SORTED = sorted(KNOWN_VARIABLES)


def nearest_variable(name: str) -> str | None:
    """The known name closest to ``name`` (difflib's ratio of at least 0.6), if any."""
    found = difflib.get_close_matches(name, _SORTED, n=1)
    return found[0] if found else None
