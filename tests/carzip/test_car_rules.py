"""The car's rules, checked before anything is written: exactly one ``.pb`` file and ``model_metadata.json``
at the archive root, sensors and a training algorithm the car supports, sound continuous action ranges, and
an archive name the car accepts."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pytest

from drtransfer.endpoints import Endpoint
from drtransfer.errors import ConfigError, ModelError, TransferError
from drtransfer.packaging import (
    MemberSource,
    OpenedMember,
    build_targz,
    resolve_archive_name,
    sanitize_archive_name,
)
from drtransfer.runconfig import RunConfig
from drtransfer_plugins.carzip.rules import car_rule_violations, check_car_package
from tests.carzip.conftest import FIXTURE_METADATA, read_archive

CAR_MEMBERS = ["agent/model.pb", "model_metadata.json"]


def metadata(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE_METADATA.read_text())
    data.update(changes)
    return data


def run_with_upload_prefix(prefix: str) -> RunConfig:
    local = Endpoint("local", "http://127.0.0.1:1", "us-east-1", None)
    return RunConfig("3", local, "bucket", "rl-model", None, "", prefix, "r.py", "rl-model/metrics", "us-east-1")


def test_the_drfc_sample_model_is_accepted() -> None:
    assert car_rule_violations(CAR_MEMBERS, metadata()) == []
    check_car_package("rl-model-1", CAR_MEMBERS, metadata(), "run 3")


def test_a_forbidden_sensor_is_refused_naming_it() -> None:
    bad = metadata(sensor=["FRONT_FACING_CAMERA", "DISCRETIZED_SECTOR_LIDAR"])
    with pytest.raises(ModelError) as error:
        check_car_package("rl-model-1", CAR_MEMBERS, bad, "run 3")
    message = str(error.value)
    assert "the car does not support the sensor(s) DISCRETIZED_SECTOR_LIDAR (it accepts " in message
    assert message.startswith("The car would refuse the package rl-model-1.tar.gz of run 3")


def test_two_pb_files_or_none_are_refused() -> None:
    two = car_rule_violations(["agent/model.pb", "extra/model_7.pb", "model_metadata.json"], metadata())
    assert two == ["the car needs exactly one .pb file in the archive (found 2: agent/model.pb, extra/model_7.pb)"]
    assert car_rule_violations(["model_metadata.json"], metadata()) == [
        "the car needs exactly one .pb file in the archive (found 0: none)"
    ]


def test_metadata_must_sit_at_the_archive_root() -> None:
    assert car_rule_violations(["agent/model.pb", "model/model_metadata.json"], metadata()) == [
        "model_metadata.json must be at the archive root"
    ]


def test_algorithm_and_continuous_ranges_are_checked() -> None:
    assert car_rule_violations(CAR_MEMBERS, metadata(training_algorithm="dqn")) == [
        "the car does not run the training algorithm 'dqn' (it runs clipped_ppo, sac)"
    ]
    good_continuous = {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 1, "high": 2.5}}
    ok = metadata(action_space_type="continuous", action_space=good_continuous, training_algorithm="sac")
    assert car_rule_violations(CAR_MEMBERS, ok) == []
    flat = {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 2, "high": 2}}
    problems = car_rule_violations(CAR_MEMBERS, metadata(action_space_type="continuous", action_space=flat))
    assert problems == ["the continuous speed range needs numbers with high > low (found {'low': 2, 'high': 2})"]


def test_defaults_of_an_old_metadata_file_are_accepted() -> None:
    # No sensor, algorithm or type: simapp's defaults (observation, clipped_ppo, discrete) all suit the car.
    assert car_rule_violations(CAR_MEMBERS, {"action_space": [{"steering_angle": 0, "speed": 1}]}) == []


def test_a_dotted_explicit_name_is_refused_and_the_default_is_fixed_and_reported() -> None:
    with pytest.raises(ConfigError, match=r"'my\.model' is not allowed.*e\.g\. 'my-model'"):
        resolve_archive_name(run_with_upload_prefix("x"), "my.model")
    name, note = resolve_archive_name(run_with_upload_prefix("models/rl.v1.2-1"), None)
    assert name == "models-rl-v1-2-1"
    assert note is not None and "'models-rl-v1-2-1' instead of 'models/rl.v1.2-1'" in note
    assert resolve_archive_name(run_with_upload_prefix("rl_model-1"), None) == ("rl_model-1", None)
    # No upload prefix (packaging with -L or --no-upload): the model prefix names the archive.
    assert resolve_archive_name(run_with_upload_prefix(""), None) == ("rl-model", None)
    with pytest.raises(ModelError, match=r"archive name 'a\.b' must match"):
        check_car_package("a.b", CAR_MEMBERS, metadata(), "run 3")
    assert sanitize_archive_name("...") == ""
    with pytest.raises(ConfigError, match="DR_UPLOAD_S3_PREFIX"):
        resolve_archive_name(run_with_upload_prefix("..."), None)


def test_streamed_archive_holds_exact_bytes_and_detects_short_or_corrupt_streams() -> None:
    pb = bytes(range(256)) * 4096
    members = [
        MemberSource.from_bytes("agent/model.pb", pb, "memory:pb"),
        MemberSource.from_bytes("model_metadata.json", b"{}", "memory:meta"),
    ]
    data, written = build_targz(members)
    assert read_archive(data) == {"agent/model.pb": pb, "model_metadata.json": b"{}"}
    assert [(m.name, m.size, m.md5) for m in written] == [
        ("agent/model.pb", len(pb), hashlib.md5(pb).hexdigest()),
        ("model_metadata.json", 2, hashlib.md5(b"{}").hexdigest()),
    ]

    def announced(data: bytes, size: int, md5: str | None) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def opener() -> Any:
            yield OpenedMember(io.BytesIO(data), size, md5)

        return opener

    with pytest.raises(TransferError, match=r"memory:short stopped after 10 of 20 bytes"):
        build_targz([MemberSource("agent/model.pb", "memory:short", announced(b"x" * 10, 20, None))])
    with pytest.raises(TransferError, match="memory:bad arrived corrupted"):
        build_targz([MemberSource("agent/model.pb", "memory:bad", announced(b"y" * 10, 10, "0" * 32))])
