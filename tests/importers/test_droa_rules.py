"""DRoA's checks with its wording, and the training_params.yaml normalisation DRoA needs (pure)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from drtransfer.plan import dump_training_params
from drtransfer_plugins.droa import checks
from tests.plugins.factory import make_run

DISCRETE = {"action_space": [{"steering_angle": 0, "speed": 1}], "action_space_type": "discrete",
            "training_algorithm": "clipped_ppo"}


def params(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"WORLD_NAME": "reInvent2019_track", "BODY_SHELL_TYPE": "deepracer", "CAR_COLOR": "Red",
                            "RACE_TYPE": "TIME_TRIAL", "TRACK_DIRECTION_CLOCKWISE": False}
    base.update(values)
    return base


@pytest.mark.parametrize(
    ("source", "values", "world", "clockwise"),
    [
        ({"WORLD_NAME": "2022_april_open_cw"}, {}, "2022_april_open", True),
        ({"WORLD_NAME": "2022_april_open_ccw"}, {}, "2022_april_open", False),
        ({"WORLD_NAME": "2022_april_open", "TRACK_DIRECTION_CLOCKWISE": "True"}, {}, "2022_april_open", True),
        ({"WORLD_NAME": "2022_april_open", "TRACK_DIRECTION_CLOCKWISE": "false"}, {}, "2022_april_open", False),
        ({"WORLD_NAME": "2022_april_open"}, {"DR_WORLD_NAME": "2022_april_open_ccw"}, "2022_april_open", False),
        # A plain name trains on the plain route, which runs counter-clockwise; REVERSE_DIR turns it round.
        ({"WORLD_NAME": "2022_april_open"}, {}, "2022_april_open", False),
        ({"WORLD_NAME": "2022_april_open", "REVERSE_DIR": "True"}, {}, "2022_april_open", True),
        ({"WORLD_NAME": "2022_april_open", "REVERSE_DIR": "False"}, {"DR_TRAIN_REVERSE_DIRECTION": "True"},
         "2022_april_open", False),  # the model's own yaml answers; the run file is not asked
        ({"WORLD_NAME": "2022_april_open"}, {"DR_TRAIN_REVERSE_DIRECTION": "True"}, "2022_april_open", True),
        ({"WORLD_NAME": "2022_april_open"}, {"DR_WORLD_NAME": "2022_april_open_cw"}, "2022_april_open", False),
        # simapp reverses whichever route it loaded, a suffixed one too.
        ({"WORLD_NAME": "2022_april_open_cw", "REVERSE_DIR": "True"}, {}, "2022_april_open", False),
        ({"WORLD_NAME": "2022_april_open", "TRACK_DIRECTION_CLOCKWISE": "True", "REVERSE_DIR": True}, {},
         "2022_april_open", False),
    ],
)
def test_world_name_loses_its_suffix_and_the_direction_becomes_a_yaml_boolean(
    source: dict[str, Any], values: dict[str, str], world: str, clockwise: bool
) -> None:
    out = checks.normalise_training_params(source, make_run(values=values))
    assert out["WORLD_NAME"] == world
    assert out["TRACK_DIRECTION_CLOCKWISE"] is clockwise
    text = dump_training_params(out).decode()
    assert f"TRACK_DIRECTION_CLOCKWISE: {str(clockwise).lower()}\n" in text  # unquoted: DRoA reads === true
    assert yaml.safe_load(text)["TRACK_DIRECTION_CLOCKWISE"] is clockwise


def test_object_avoidance_values_get_the_types_droa_compares() -> None:
    out = checks.normalise_training_params(
        {"WORLD_NAME": "reinvent_base", "NUMBER_OF_OBSTACLES": "3", "RANDOMIZE_OBSTACLE_LOCATIONS": "False"}, make_run()
    )
    assert out["NUMBER_OF_OBSTACLES"] == 3 and out["RANDOMIZE_OBSTACLE_LOCATIONS"] is False


@pytest.mark.parametrize(("count", "expected"), [("3", 3), ("3.0", 3), (" 4 ", 4), (3.0, 3), (5, 5),
                                                 ("+3", "+3"), ("3.5", "3.5"), ("three", "three"), (True, True)])
def test_an_unambiguous_obstacle_count_becomes_an_integer_and_nothing_else_does(count: Any, expected: Any) -> None:
    out = checks.normalise_training_params({"WORLD_NAME": "reinvent_base", "NUMBER_OF_OBSTACLES": count}, make_run())
    assert out["NUMBER_OF_OBSTACLES"] == expected and type(out["NUMBER_OF_OBSTACLES"]) is type(expected)
    text = dump_training_params(out).decode()
    if isinstance(expected, int) and not isinstance(expected, bool):
        assert yaml.safe_load(text)["NUMBER_OF_OBSTACLES"] == expected  # read back as a number, not a string


def test_obstacle_positions_are_rewritten_as_plain_numbers_and_unreadable_ones_are_kept() -> None:
    out = checks.normalise_training_params(
        {"WORLD_NAME": "reinvent_base", "OBJECT_POSITIONS": ["0.30, 1", " .5,-1", "0.70,+1"]}, make_run())
    assert out["OBJECT_POSITIONS"] == ["0.3,1", "0.5,-1", "0.7,1"]
    kept = checks.normalise_training_params(
        {"WORLD_NAME": "reinvent_base", "OBJECT_POSITIONS": ["0.30,1", "0.60"]}, make_run())
    assert kept["OBJECT_POSITIONS"] == ["0.30,1", "0.60"]  # one is not "pct,lane": the check refuses it


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, None),
        ({"CAR_COLOR": "Pink"}, "Invalid car customization. Car shell DEEPRACER is not available in color PINK."),
        ({"CAR_COLOR": "Black"}, None),
        ({"CAR_COLOR": "Chartreuse"}, None),  # not a DRoA colour: DRoA falls back to WHITE
        ({"BODY_SHELL_TYPE": "f1_car_tron_05"}, None),
        ({"BODY_SHELL_TYPE": "no_such_shell"}, None),  # unknown shells become DEEPRACER WHITE in DRoA
    ],
)
def test_car_shell_and_colour(values: dict[str, Any], message: str | None) -> None:
    assert checks.check_car(params(**values)) == message


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"WORLD_NAME": "reInvent2019_track", "TRACK_DIRECTION_CLOCKWISE": True}, None),
        ({"WORLD_NAME": "reinvent_base", "TRACK_DIRECTION_CLOCKWISE": True}, None),  # one direction: its default
        ({"WORLD_NAME": "dubai_pro", "TRACK_DIRECTION_CLOCKWISE": True}, None),
        ({"WORLD_NAME": "no_such_track"},
         "Invalid track configuration. Track no_such_track is not available in direction COUNTER_CLOCKWISE."),
        ({"WORLD_NAME": "reInvent2019_track_cw"},
         "Invalid track configuration. Track reInvent2019_track_cw is not available in direction COUNTER_CLOCKWISE."),
    ],
)
def test_track_and_direction(values: dict[str, Any], message: str | None) -> None:
    assert checks.check_track(params(**values)) == message


def test_sac_and_action_space_rules() -> None:
    sac_discrete = {**DISCRETE, "training_algorithm": "sac"}
    assert checks.check_algorithm(sac_discrete, {"num_episodes_between_training": 1}) == (
        "Agent algorithm SAC does not work with discrete action space."
    )
    sac = {"training_algorithm": "sac", "action_space_type": "continuous",
           "action_space": {"speed": {"low": 1, "high": 2}, "steering_angle": {"low": -30, "high": 30}}}
    assert checks.check_algorithm(sac, {"num_episodes_between_training": 1}) is None
    assert checks.check_algorithm(sac, {"num_episodes_between_training": 20}) == (
        "Invalid hyperparameter number of episodes between training for SAC agent algorithm."
    )
    slow = {**sac, "training_algorithm": "clipped_ppo",
            "action_space": {"speed": {"low": 2, "high": 2}, "steering_angle": {"low": -30, "high": 30}}}
    assert checks.check_algorithm(slow, {}) == "Invalid action space speeds."
    crooked = {**slow, "action_space": {"speed": {"low": 1, "high": 2}, "steering_angle": {"low": 30, "high": -30}}}
    assert checks.check_algorithm(crooked, {}) == "Invalid action space steering angles."
    assert checks.check_algorithm(DISCRETE, {}) is None


def test_object_avoidance_positions() -> None:
    oa = {"RACE_TYPE": "OBJECT_AVOIDANCE", "NUMBER_OF_OBSTACLES": 2, "RANDOMIZE_OBSTACLE_LOCATIONS": False}
    assert checks.check_object_avoidance({**oa, "OBJECT_POSITIONS": ["0.2,1", "0.5,-1"]}) is None
    assert checks.check_object_avoidance({**oa, "NUMBER_OF_OBSTACLES": 7}) == "Number of obstacle positions is invalid."
    assert checks.check_object_avoidance({**oa, "OBJECT_POSITIONS": ["0.2,1"]}) == (
        "Obstacle positions must be equal to number of objects."
    )
    assert checks.check_object_avoidance({**oa, "OBJECT_POSITIONS": ["0.05,1", "0.5,1"]}) == (
        "First obstacle position is invalid."
    )
    assert checks.check_object_avoidance({**oa, "OBJECT_POSITIONS": ["0.2,1", "0.25,1"]}) == (
        "Obstacle position distances are invalid."
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"NUMBER_OF_OBSTACLES": "+3", "RANDOMIZE_OBSTACLE_LOCATIONS": True},
         "Number of obstacle positions is invalid. NUMBER_OF_OBSTACLES is '+3'; DRoA stores only a whole number "
         "from 1 to 6"),
        ({"NUMBER_OF_OBSTACLES": "2.5", "RANDOMIZE_OBSTACLE_LOCATIONS": True},
         "Number of obstacle positions is invalid. NUMBER_OF_OBSTACLES is '2.5'; DRoA stores only a whole number "
         "from 1 to 6"),
        ({"NUMBER_OF_OBSTACLES": 0}, "Number of obstacle positions is invalid."),
        ({"NUMBER_OF_OBSTACLES": 2, "OBJECT_POSITIONS": ["0.30", "0.60"]},
         "Please enter a valid number for Lane Number. OBJECT_POSITIONS has '0.30'; DRoA stores each as "
         "'fraction,lane' (lane 1 or -1)"),
        ({"NUMBER_OF_OBSTACLES": 2, "OBJECT_POSITIONS": ["0.30,1", "half,-1"]},
         "Please enter a valid number for Track Percentage. OBJECT_POSITIONS has 'half,-1'; DRoA stores each as "
         "'fraction,lane' (lane 1 or -1)"),
        ({"NUMBER_OF_OBSTACLES": 2, "OBJECT_POSITIONS": "0.3,1;0.6,-1"},
         "OBJECT_POSITIONS is '0.3,1;0.6,-1', not a list; DRoA reads a list of 'fraction,lane' entries"),
        # DRoA's own checks come first, as DRoA answers them before it stores anything.
        ({"NUMBER_OF_OBSTACLES": 2, "OBJECT_POSITIONS": ["0.30", "0.35"]}, "Obstacle position distances are invalid."),
        ({"NUMBER_OF_OBSTACLES": 1, "OBJECT_POSITIONS": ["0.95,1"]}, "Last obstacle position is invalid."),
        # Positions DRoA does not read are not checked.
        ({"NUMBER_OF_OBSTACLES": 2, "OBJECT_POSITIONS": ["0.30"], "RANDOMIZE_OBSTACLE_LOCATIONS": True}, None),
        ({"NUMBER_OF_OBSTACLES": "3.0", "RANDOMIZE_OBSTACLE_LOCATIONS": True}, None),  # normalised before the check
    ],
)
def test_obstacle_values_droa_cannot_store_are_refused_with_its_words(values: dict[str, Any],
                                                                       message: str | None) -> None:
    normalised = checks.normalise_training_params({"WORLD_NAME": "reinvent_base", "RACE_TYPE": "OBJECT_AVOIDANCE",
                                                   **values}, make_run())
    assert checks.check_object_avoidance(normalised) == message


@pytest.mark.parametrize(
    ("values", "warning"),
    [
        ({}, None),
        ({"RACE_TYPE": "OBJECT_AVOIDANCE", "NUMBER_OF_OBSTACLES": 3}, None),
        ({"RACE_TYPE": "HEAD_TO_BOT"},
         "DRoA records RACE_TYPE 'HEAD_TO_BOT' as a time trial (it knows only TIME_TRIAL and OBJECT_AVOIDANCE): "
         "the bot cars are not part of what it records"),
        ({"BODY_SHELL_TYPE": "no_such_shell"},
         "DRoA records BODY_SHELL_TYPE 'no_such_shell' as the DEEPRACER car in WHITE, since it has no such shell"),
        ({"CAR_COLOR": "Chartreuse"},
         "DRoA records CAR_COLOR 'Chartreuse' as WHITE, since it has no such colour"),
        ({"BODY_SHELL_TYPE": "f1_car_tron_05", "CAR_COLOR": "Chartreuse"}, None),  # the shell id holds its colour
    ],
)
def test_what_droa_would_silently_record_differently_is_a_warning(values: dict[str, Any],
                                                                   warning: str | None) -> None:
    assert checks.model_warnings(params(**values)) == ([warning] if warning else [])
    assert checks.model_problems(params(**values), DISCRETE, {}, 0) == []  # a warning, not a refusal


def test_names_descriptions_and_the_1_gib_limit() -> None:
    assert checks.check_name("good-name-1") is None
    assert checks.check_name("bad_name") == (
        "Model name must contain only alphanumeric characters and hyphens; and must be less than or equal to 64 "
        "characters in length")
    assert checks.check_description("A fine model - v2") is None
    assert checks.check_description("no_underscores") is not None
    assert checks.check_size(1024**3) is None
    assert checks.check_size(1024**3 + 1) == "Folder size exceeds max 1GB limit"
