"""DRoA's import checks, run here first with DRoA's own wording, and the ``training_params.yaml``
normalisation DRoA needs (deepracer-domain §6.1 step 3, §6.2).

The synchronous checks of DRoA's ``POST /importmodel`` (``importModel.ts``, ``validation.ts``,
``ImportHelper.ts``), what DRoA's database layer cannot store (it answers HTTP 500 and keeps half a model),
and the web UI's 1 GiB folder limit. Each check returns DRoA's message or ``None``; :func:`model_warnings`
names what DRoA would record differently from the model.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

from drtransfer.runconfig import RunConfig
from drtransfer_plugins.droa.catalog import CAR_COLORS, CAR_SHELLS, CCW, CW, DEEPRACER_SHELL_ID, TRACKS

MAX_FOLDER_SIZE = 1024**3  # the web UI's MAX_FOLDER_SIZE
MAX_OBSTACLES = 6
NAME_SENTENCE = (
    "Model name must contain only alphanumeric characters and hyphens; and must be less than or equal to 64 "
    "characters in length"
)
_NAME = re.compile(r"^[a-zA-Z0-9-]+$")
_DESCRIPTION = re.compile(r"^[a-zA-Z0-9- ]+$")
_DIRECTION_SUFFIX = re.compile(r"_(cw|ccw)$")
_TRUE = {"true", "1", "yes"}
_COUNT = re.compile(r"^\d+(\.0+)?$")
_PERCENTAGE = re.compile(r"^(\d+(\.\d*)?|\.\d+)$")
_LANE = re.compile(r"^[+-]?\d+$")  # what simapp's int() reads
_RACE_TYPES = ("TIME_TRIAL", "OBJECT_AVOIDANCE")


# ---- training_params.yaml ------------------------------------------------------------------------


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | {"false", "0", "no"}:
        return value.strip().lower() in _TRUE
    return None


def obstacle_count(value: Any) -> int | None:
    """``NUMBER_OF_OBSTACLES`` as the integer DRoA must store, when the value is plainly one (``3``,
    ``'3'``, ``'3.0'``); ``None`` for anything else (``'+3'``, ``'2.5'``, booleans)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and _COUNT.match(value.strip()):
        return int(float(value))
    return None


def _position_parts(entry: Any) -> tuple[str, str | None]:
    """The percentage and lane texts of one ``OBJECT_POSITIONS`` entry (``"pct,lane"``)."""
    parts = [part.strip() for part in str(entry).split(",")]
    return parts[0], parts[1] if len(parts) == 2 else None


def obstacle_position(entry: Any) -> tuple[float, int] | None:
    """One ``OBJECT_POSITIONS`` entry as the numbers DRoA stores, or ``None`` when it is not ``"pct,lane"``."""
    if not isinstance(entry, str):
        return None
    percentage, lane = _position_parts(entry)
    if lane is None or not _PERCENTAGE.match(percentage) or not _LANE.match(lane):
        return None
    return float(percentage), int(lane)


def trained_clockwise(params: Mapping[str, Any], run: RunConfig) -> bool:
    """The direction the model trained in, as simapp drives it.

    simapp loads the route ``<WORLD_NAME>.npy`` (with ``_cw``/``_ccw`` added when the yaml has
    ``TRACK_DIRECTION_CLOCKWISE``) and reverses it when ``REVERSE_DIR`` is true. The plain route of every
    two-direction DRoA track runs counter-clockwise. ``REVERSE_DIR`` is the yaml's; the run's
    ``DR_TRAIN_REVERSE_DIRECTION`` stands in only when the yaml has none (a generated yaml).
    """
    world = str(params.get("WORLD_NAME") or run.values.get("DR_WORLD_NAME") or "")
    reverse = _as_bool(params.get("REVERSE_DIR"))
    if reverse is None:
        reverse = _as_bool(run.values.get("DR_TRAIN_REVERSE_DIRECTION", "False")) or False
    route_clockwise = _as_bool(params.get("TRACK_DIRECTION_CLOCKWISE"))
    if route_clockwise is None:
        match = _DIRECTION_SUFFIX.search(world)
        route_clockwise = match is not None and match.group(1) == "cw"
    return route_clockwise != reverse


def normalise_training_params(params: Mapping[str, Any], run: RunConfig) -> dict[str, Any]:
    """DRoA's reading of ``training_params.yaml``, made to match the model.

    ``WORLD_NAME`` loses a ``_cw``/``_ccw`` suffix (DRoA track ids have none); ``TRACK_DIRECTION_CLOCKWISE``
    becomes the YAML boolean of :func:`trained_clockwise` (DRoA reads ``=== true``). The values DRoA
    compares or stores as numbers and booleans get those types where the text is unambiguous:
    ``RANDOMIZE_OBSTACLE_LOCATIONS``, ``NUMBER_OF_OBSTACLES`` (:func:`obstacle_count`) and each
    ``OBJECT_POSITIONS`` entry (rewritten ``"pct,lane"`` with plain numbers when the whole list reads so).
    The S3 fields already point at the upload location (``drtransfer.plan.training_params_for``).
    """
    out = dict(params)
    out["TRACK_DIRECTION_CLOCKWISE"] = trained_clockwise(params, run)
    out["WORLD_NAME"] = _DIRECTION_SUFFIX.sub("", str(out.get("WORLD_NAME") or run.values.get("DR_WORLD_NAME") or ""))
    if "RANDOMIZE_OBSTACLE_LOCATIONS" in out and (flag := _as_bool(out["RANDOMIZE_OBSTACLE_LOCATIONS"])) is not None:
        out["RANDOMIZE_OBSTACLE_LOCATIONS"] = flag
    if (count := obstacle_count(out.get("NUMBER_OF_OBSTACLES"))) is not None:
        out["NUMBER_OF_OBSTACLES"] = count
    positions = out.get("OBJECT_POSITIONS")
    if isinstance(positions, list) and positions:
        parsed = [obstacle_position(entry) for entry in positions]
        if all(parsed):
            out["OBJECT_POSITIONS"] = [f"{pct!r},{lane}" for pct, lane in (p for p in parsed if p)]
    return out


# ---- request checks --------------------------------------------------------------------------------


def check_name(name: str) -> str | None:
    if not name:
        return "Missing required fields"
    if not _NAME.match(name) or len(name) > 64:
        return NAME_SENTENCE
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
    """DRoA's obstacle checks, in its order, then what its database cannot store (a count that is not a
    number, positions that are not ``"pct,lane"``): DRoA answers those with HTTP 500 after writing the
    model record without its training record."""
    if params.get("RACE_TYPE") != "OBJECT_AVOIDANCE":
        return None
    raw = params.get("NUMBER_OF_OBSTACLES")
    count = obstacle_count(raw)
    if count is None and raw is not None:
        return (f"Number of obstacle positions is invalid. NUMBER_OF_OBSTACLES is {raw!r}; DRoA stores only a whole "
                f"number from 1 to {MAX_OBSTACLES}")
    if count is None or not 1 <= count <= MAX_OBSTACLES:
        return "Number of obstacle positions is invalid."
    positions = params.get("OBJECT_POSITIONS")
    if not positions or params.get("RANDOMIZE_OBSTACLE_LOCATIONS") is True:
        return None  # DRoA reads no positions
    if not isinstance(positions, list):
        return f"OBJECT_POSITIONS is {positions!r}, not a list; DRoA reads a list of 'fraction,lane' entries"
    percentages = [_percentage(entry) for entry in positions]
    unreadable = next((entry for entry, pct in zip(positions, percentages, strict=True) if pct is None), None)
    if unreadable is not None:
        return _position_problem("Track Percentage", unreadable)
    if len(positions) != count:
        return "Obstacle positions must be equal to number of objects."
    ordered = sorted(pct for pct in percentages if pct is not None)
    if ordered[0] < 0.07:
        return "First obstacle position is invalid."
    if ordered[-1] > 0.9:
        return "Last obstacle position is invalid."
    if any(b - a < 0.13 for a, b in itertools.pairwise(ordered)):
        return "Obstacle position distances are invalid."
    laneless = next((entry for entry in positions if obstacle_position(entry) is None), None)
    if laneless is not None:
        return _position_problem("Lane Number", laneless)
    return None


def _percentage(entry: Any) -> float | None:
    percentage, _lane = _position_parts(entry)
    return float(percentage) if isinstance(entry, str) and _PERCENTAGE.match(percentage) else None


def _position_problem(field: str, entry: Any) -> str:
    """The web UI's sentence for a field that is not a number, and the entry it comes from."""
    return (f"Please enter a valid number for {field}. OBJECT_POSITIONS has {entry!r}; DRoA stores each as "
            f"'fraction,lane' (lane 1 or -1)")


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


def model_warnings(params: Mapping[str, Any]) -> list[str]:
    """What DRoA would accept but record differently from the model (``determineRaceType``,
    ``getCarCustomization``)."""
    warnings = []
    race_type = params.get("RACE_TYPE")
    if race_type and race_type not in _RACE_TYPES:
        bots = ": the bot cars are not part of what it records" if race_type == "HEAD_TO_BOT" else ""
        warnings.append(f"DRoA records RACE_TYPE {race_type!r} as a time trial (it knows only TIME_TRIAL and "
                        f"OBJECT_AVOIDANCE){bots}")
    shell_type = params.get("BODY_SHELL_TYPE")
    shell, color = car_customization(params)
    if shell_type and shell_type != DEEPRACER_SHELL_ID and (shell, color) == ("DEEPRACER", "WHITE"):
        warnings.append(f"DRoA records BODY_SHELL_TYPE {shell_type!r} as the DEEPRACER car in WHITE, since it has "
                        f"no such shell")
    car_color = params.get("CAR_COLOR")
    if shell_type == DEEPRACER_SHELL_ID and car_color and str(car_color).upper() not in CAR_COLORS:
        warnings.append(f"DRoA records CAR_COLOR {car_color!r} as WHITE, since it has no such colour")
    return warnings


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
