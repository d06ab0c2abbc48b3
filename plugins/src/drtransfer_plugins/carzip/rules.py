"""What a physical DeepRacer accepts in a model package: checked on the member list and the model
metadata before any byte is written.

The car's web server (aws-deepracer-webserver-pkg) installs exactly one ``.pb`` found anywhere in the
archive and reads ``model_metadata.json`` from its root; it refuses sensors and algorithms it does not
know and continuous action spaces whose ``high`` is not above ``low``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from drtransfer.errors import ModelError

CAR_FORMAT = "car"
CAR_SUFFIX = ".tar.gz"
CAR_MODEL_MEMBER = "agent/model.pb"
CAR_METADATA_MEMBER = "model_metadata.json"
CAR_SENSORS = frozenset(
    {"observation", "LIDAR", "SECTOR_LIDAR", "LEFT_CAMERA", "FRONT_FACING_CAMERA", "STEREO_CAMERAS"}
)
CAR_ALGORITHMS = frozenset({"clipped_ppo", "sac"})
_ARCHIVE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def car_rule_violations(members: Sequence[str], metadata: Mapping[str, Any]) -> list[str]:
    """Everything the car would refuse in an archive holding ``members`` with this ``model_metadata.json``.

    The car installs exactly one ``.pb`` found anywhere in the archive, reads ``model_metadata.json``
    from the archive root, and refuses sensors, algorithms and continuous ranges it cannot run.
    """
    problems: list[str] = []
    pbs = [name for name in members if name.lower().endswith(".pb")]
    if len(pbs) != 1:
        found = ", ".join(pbs) if pbs else "none"
        problems.append(f"the car needs exactly one .pb file in the archive (found {len(pbs)}: {found})")
    if CAR_METADATA_MEMBER not in members:
        problems.append(f"{CAR_METADATA_MEMBER} must be at the archive root")
    for name in members:
        if name.startswith("/") or ".." in name.split("/"):
            problems.append(f"the member name {name!r} is not a plain relative path")
    problems.extend(_metadata_violations(metadata))
    return problems


def _metadata_violations(metadata: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    sensors = metadata.get("sensor", ["observation"])
    if not isinstance(sensors, list) or not sensors or not all(isinstance(s, str) for s in sensors):
        problems.append(f"the sensor entry must be a non-empty list of sensor names (found {sensors!r})")
    else:
        refused = [s for s in sensors if s not in CAR_SENSORS]
        if refused:
            problems.append(
                f"the car does not support the sensor(s) {', '.join(refused)} "
                f"(it accepts {', '.join(sorted(CAR_SENSORS))})"
            )
    algorithm = metadata.get("training_algorithm", "clipped_ppo")
    if not isinstance(algorithm, str) or algorithm.lower() not in CAR_ALGORITHMS:
        problems.append(
            f"the car does not run the training algorithm {algorithm!r} (it runs {', '.join(sorted(CAR_ALGORITHMS))})"
        )
    space_type = str(metadata.get("action_space_type", "discrete")).lower()
    space = metadata.get("action_space")
    if space_type == "continuous":
        if not isinstance(space, dict):
            problems.append("a continuous action_space must be an object with steering_angle and speed ranges")
        else:
            for axis in ("steering_angle", "speed"):
                bounds = space.get(axis)
                low = _number(bounds.get("low")) if isinstance(bounds, dict) else None
                high = _number(bounds.get("high")) if isinstance(bounds, dict) else None
                if low is None or high is None or high <= low:
                    problems.append(f"the continuous {axis} range needs numbers with high > low (found {bounds!r})")
    elif space_type == "discrete":
        if not isinstance(space, list) or not space:
            problems.append("a discrete action_space must be a non-empty list of actions")
    else:
        problems.append(f"the action_space_type {space_type!r} is neither discrete nor continuous")
    return problems


def _number(value: object) -> float | None:
    """``value`` as a number (JSON int or float, not a boolean), else ``None``."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def check_car_package(name: str, members: Sequence[str], metadata: Mapping[str, Any], where: str) -> None:
    """Raise one :class:`ModelError` naming every car rule the archive ``name`` of ``where`` breaks."""
    problems = car_rule_violations(members, metadata)
    if not _ARCHIVE_NAME.match(name):
        problems.insert(0, f"the archive name {name!r} must match [A-Za-z0-9_-]+ (the car cuts names at the first dot)")
    if problems:
        raise ModelError(f"The car would refuse the package {name}{CAR_SUFFIX} of {where}: {'; '.join(problems)}.")
