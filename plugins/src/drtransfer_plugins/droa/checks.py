"""DRoA's import checks, run here first with DRoA's own wording, and the ``training_params.yaml``
normalisation DRoA needs (deepracer-domain §6.1 step 3, §6.2).

The synchronous checks of DRoA's ``POST /importmodel`` (``importModel.ts``, ``validation.ts``,
``ImportHelper.ts``) and the web UI's 1 GiB folder limit. Each check returns DRoA's message or ``None``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

from drtransfer.runconfig import RunConfig
from drtransfer_plugins.droa.catalog import CAR_COLORS, CAR_SHELLS, CCW, CW, DEEPRACER_SHELL_ID, TRACKS

MAX_FOLDER_SIZE = 1024**3  # the web UI's MAX_FOLDER_SIZE
_NAME = re.compile(r"^[a-zA-Z0-9-]+$")
_DESCRIPTION = re.compile(r"^[a-zA-Z0-9- ]+$")
_DIRECTION_SUFFIX = re.compile(r"_(cw|ccw)$")
_TRUE = {"true", "1", "yes"}


# ---- training_params.yaml ------------------------------------------------------------------------


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | {"false", "0", "no"}:
        return value.strip().lower() in _TRUE
    return None


def normalise_training_params(params: Mapping[str, Any], run: RunConfig) -> dict[str, Any]:
    """DRoA's reading of ``training_params.yaml``, made to match the model.

    ``WORLD_NAME`` loses a ``_cw``/``_ccw`` suffix (DRoA track ids have none); ``TRACK_DIRECTION_CLOCKWISE``
    becomes a YAML boolean (DRoA reads ``=== true``; DRfC's quoted ``'True'`` would mean counter-clockwise):
    kept when present, else from the suffix (of ``WORLD_NAME``, then of ``DR_WORLD_NAME``), else
    ``not DR_TRAIN_REVERSE_DIRECTION`` as DRfC's importer does. ``RANDOMIZE_OBSTACLE_LOCATIONS`` and
    ``NUMBER_OF_OBSTACLES`` get their real types too, since DRoA compares them as boolean and number.
    The S3 fields already point at the upload location (``drtransfer.plan.training_params_for``).
    """
    out = dict(params)
    raw_world = str(out.get("WORLD_NAME") or run.values.get("DR_WORLD_NAME") or "")
    world = _DIRECTION_SUFFIX.sub("", raw_world)
    out["WORLD_NAME"] = world
    clockwise = _as_bool(out.get("TRACK_DIRECTION_CLOCKWISE"))
    if clockwise is None:
        env_world = str(run.values.get("DR_WORLD_NAME", ""))
        for candidate in (raw_world, env_world if _DIRECTION_SUFFIX.sub("", env_world) == world else ""):
            if match := _DIRECTION_SUFFIX.search(candidate):
                clockwise = match.group(1) == "cw"
                break
        else:
            clockwise = not (_as_bool(run.values.get("DR_TRAIN_REVERSE_DIRECTION", "False")) or False)
    out["TRACK_DIRECTION_CLOCKWISE"] = clockwise
    if "RANDOMIZE_OBSTACLE_LOCATIONS" in out and (flag := _as_bool(out["RANDOMIZE_OBSTACLE_LOCATIONS"])) is not None:
        out["RANDOMIZE_OBSTACLE_LOCATIONS"] = flag
    if isinstance(out.get("NUMBER_OF_OBSTACLES"), str) and out["NUMBER_OF_OBSTACLES"].strip().isdigit():
        out["NUMBER_OF_OBSTACLES"] = int(out["NUMBER_OF_OBSTACLES"])
    return out


# ---- request checks --------------------------------------------------------------------------------


def check_name(name: str) -> str | None:
    if not name:
        return "Missing required fields"
    if not _NAME.match(name) or len(name) > 64:
        return (
            "Model name must contain only alphanumeric characters and hyphens; and must be less than or equal "
            "to 64 characters in length"
        )
    return None


def check_description(description: str | None) -> str | None:
    if description and (not _DESCRIPTION.match(description) or len(description) > 255):
        return (
            "Model description must contain only alphanumeric characters, spaces, and hyphen; and must be less "
            "than or equal to 255 characters in length"
        )
    return None


def check_size(total_bytes: int) -> str | None:
    return "Folder size exceeds max 1GB limit" if total_bytes > MAX_FOLDER_SIZE else None


# ---- model checks ----------------------------------------------------------------------------------


def car_customization(params: Mapping[str, Any]) -> tuple[str, str]:
    """DRoA's (shell, colour) for the simapp ``BODY_SHELL_TYPE`` / ``CAR_COLOR`` (unknown shells: DEEPRACER
    WHITE, as DRoA does)."""
    shell_type = params.get("BODY_SHELL_TYPE")
    if shell_type == DEEPRACER_SHELL_ID:
        color = str(params.get("CAR_COLOR") or "").upper()
        return "DEEPRACER", color if color in CAR_COLORS else "WHITE"
    if shell_type:
        for shell, colors in CAR_SHELLS.items():
            for color, simapp_id in colors.items():
                if simapp_id == shell_type:
                    return shell, color
    return "DEEPRACER", "WHITE"


def check_car(params: Mapping[str, Any]) -> str | None:
    shell, color = car_customization(params)
    if color not in CAR_SHELLS[shell]:
        return f"Invalid car customization. Car shell {shell} is not available in color {color}."
    return None


def track_config(params: Mapping[str, Any]) -> tuple[str, str]:
    """DRoA's (track id, direction): single-direction tracks use their default direction."""
    track_id = str(params.get("WORLD_NAME") or "undefined")
    track = TRACKS.get(track_id)
    if track is not None and len(track[0]) == 1:
        return track_id, track[1]
    return track_id, CW if params.get("TRACK_DIRECTION_CLOCKWISE") is True else CCW


def check_track(params: Mapping[str, Any]) -> str | None:
    track_id, direction = track_config(params)
    track = TRACKS.get(track_id)
    if track is None or direction not in track[0]:
        return f"Invalid track configuration. Track {track_id} is not available in direction {direction}."
    return None


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def check_object_avoidance(params: Mapping[str, Any]) -> str | None:
    if params.get("RACE_TYPE") != "OBJECT_AVOIDANCE":
        return None
    count = _number(params.get("NUMBER_OF_OBSTACLES"))
    if not count or count > 6:
        return "Number of obstacle positions is invalid."
    positions = params.get("OBJECT_POSITIONS") or []
    if not isinstance(positions, list) or not positions or params.get("RANDOMIZE_OBSTACLE_LOCATIONS") is True:
        return None
    if len(positions) != count:
        return "Obstacle positions must be equal to number of objects."
    percentages = sorted(_number(str(p).split(",")[0]) or 0.0 for p in positions)
    if percentages[0] < 0.07:
        return "First obstacle position is invalid."
    if percentages[-1] > 0.9:
        return "Last obstacle position is invalid."
    if any(b - a < 0.13 for a, b in itertools.pairwise(percentages)):
        return "Obstacle position distances are invalid."
    return None


def check_algorithm(metadata: Mapping[str, Any], hyperparameters: Mapping[str, Any]) -> str | None:
    algorithm = metadata.get("training_algorithm")
    space_type = metadata.get("action_space_type")
    if algorithm == "sac" and space_type == "discrete":
        return "Agent algorithm SAC does not work with discrete action space."
    if algorithm == "sac" and hyperparameters.get("num_episodes_between_training") != 1:
        return "Invalid hyperparameter number of episodes between training for SAC agent algorithm."
    space = metadata.get("action_space")
    if space_type == "continuous" and isinstance(space, Mapping):
        speed, steering = space.get("speed") or {}, space.get("steering_angle") or {}
        if _inverted(speed):
            return "Invalid action space speeds."
        if _inverted(steering):
            return "Invalid action space steering angles."
    return None


def _inverted(bounds: Mapping[str, Any]) -> bool:
    """DRoA's ``low >= high`` (JavaScript: a missing bound compares false)."""
    low, high = _number(bounds.get("low")), _number(bounds.get("high"))
    return low is not None and high is not None and low >= high


def model_problems(params: Mapping[str, Any], metadata: Mapping[str, Any], hyperparameters: Mapping[str, Any],
                   total_bytes: int) -> list[str]:
    """Every DRoA check on the model, in DRoA's order; empty when DRoA would accept it."""
    checks = (
        check_car(params),
        check_track(params),
        check_object_avoidance(params),
        check_algorithm(metadata, hyperparameters),
        check_size(total_bytes),
    )
    return [problem for problem in checks if problem]
