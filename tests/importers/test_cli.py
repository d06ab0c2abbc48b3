"""``drtransfer import`` and ``drtransfer logout`` end to end: DRfC configuration files, real subprocesses,
SeaweedFS, moto's Cognito and the fake DRoA and console services."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from drtransfer.locals3 import SeaweedServer
from tests.conftest import PASSWORD, USERNAME
from tests.importers.conftest import ROLE, SCALE, edit_training_params, import_target_values
from tests.importers.test_droa_fake import folder, import_
from tests.infra.console_server import FakeConsole
from tests.infra.drfc import DrfcSetup, json_lines, seed_drfc
from tests.infra.droa_server import FakeDroa
from tests.infra.json_docs import assert_documented

RUNS = (("0", "alpha"), ("1", "beta"))


@dataclass
class Setup(DrfcSetup):
    """Two seeded runs whose system.env names the fake DRoA and console; DRoA's sign-in is cached in tmp."""

    @property
    def cache(self) -> Path:
        return Path(self.environ["DRTRANSFER_CACHE_DIR"])


@pytest.fixture
def setup(
    tmp_path: Path,
    local_s3: SeaweedServer,
    upload_s3: SeaweedServer,
    local_bucket: str,
    upload_bucket: str,
    droa: FakeDroa,
    console: FakeConsole,
) -> Setup:
    setup = seed_drfc(
        tmp_path / "drfc", local_s3, upload_s3, local_bucket, upload_bucket, RUNS, checkpoints=(1, 2, 3), best=2,
        scale=SCALE, environ={"DRTRANSFER_CACHE_DIR": str(tmp_path / "cache")}, kind=Setup,
    )  # fmt: skip
    # The importers' own tests poll through IMPORTING; here one poll (the CLI waits 10 s between polls) is enough.
    droa.polls_until_done = console.polls_until_done = 1
    setup.add_to_system_env(import_target_values(droa, console))
    return setup


def test_import_several_runs_into_droa_by_default_and_wait(setup: Setup, droa: FakeDroa) -> None:
    done = setup.run(
        "import", *setup.upload_args(), "--password-stdin", "--wait", "--json", "--processes", "1",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = [line["import"] for line in json_lines(done.stdout)]
    for result in results:
        assert_documented("import", result)
    assert [(r["run_id"], r["target"], r["model_name"], r["status"]) for r in results] == [
        ("0", "droa", "alpha-up", "ready"),
        ("1", "droa", "beta-up", "ready"),
    ]
    assert sorted(r["model_id"] for r in results) == sorted(m.model_id for m in droa.models)
    assert PASSWORD not in done.stdout + done.stderr
    [cached] = list((setup.cache / "droa").glob("*.json"))

    logout = setup.run("logout")
    assert logout.returncode == 0 and "Removed 1 cached sign-in(s)." in logout.stdout
    assert not cached.exists()


def test_an_invalid_name_is_refused_before_anything_is_copied(setup: Setup, droa: FakeDroa) -> None:
    done = setup.run("import", *setup.upload_args("0"), "--name", "alpha_v2", "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 2
    assert "contains '_'" in done.stderr and "'alpha_v2'" in done.stderr
    assert droa.s3_calls == [] and droa.api_calls == []


def test_a_wrong_password_is_one_line_and_exit_2(setup: Setup, droa: FakeDroa) -> None:
    done = setup.run("import", *setup.upload_args(), "--password-stdin", stdin="not-it\n")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("drtransfer: error: Could not sign in to DRoA") and "not-it" not in line
    assert droa.s3_calls == []


def test_console_import_of_uploaded_models_and_its_errors(setup: Setup, console: FakeConsole) -> None:
    missing = setup.run("import", *setup.upload_args(), "--to", "aws-console")
    assert missing.returncode == 2
    assert "Nothing to import at s3://" in missing.stderr and "upload the model first" in missing.stderr

    uploaded = setup.run("upload", *setup.upload_args(), "-f", "--processes", "1", "--no-progress")
    assert uploaded.returncode == 0, uploaded.stderr
    done = setup.run("import", *setup.upload_args(), "--to", "aws-console", "--wait")
    assert done.returncode == 0, done.stderr
    assert "import of 'alpha-up' into aws-console is READY" in done.stdout
    assert "import of 'beta-up' into aws-console is READY" in done.stdout
    requests = console.operations("ImportModel")
    assert [(r["Name"], r["ModelArtifactsS3Path"], r["RoleArn"], r["Type"]) for r in requests] == [
        ("alpha-up", f"s3://{setup.upload_bucket}/alpha-up", ROLE, "REINFORCEMENT_LEARNING"),
        ("beta-up", f"s3://{setup.upload_bucket}/beta-up", ROLE, "REINFORCEMENT_LEARNING"),
    ]

    again = setup.run("import", *setup.upload_args("0"), "--to", "aws-console")
    assert again.returncode == 2
    assert "A model named 'alpha-up' already exists in the AWS DeepRacer console" in again.stderr
    checkpoint = setup.run("import", *setup.upload_args("0"), "--to", "aws-console", "-b")
    assert checkpoint.returncode == 2 and "choose the checkpoint when uploading" in checkpoint.stderr


def edit(setup_local: tuple[SeaweedServer, str], prefix: str, **values: object) -> None:
    edit_training_params(setup_local[0], setup_local[1], prefix, dict(values))


def import_droa(setup: Setup, *extra: str) -> subprocess.CompletedProcess[str]:
    return setup.run("import", *setup.upload_args(), "--to", "droa", "--password-stdin", "--processes", "1",
                     "--no-progress", *extra, stdin=PASSWORD + "\n")


def test_a_count_of_3_0_is_imported_as_3_and_head_to_bot_is_a_warning(
    setup: Setup, droa: FakeDroa, local_s3: SeaweedServer, local_bucket: str
) -> None:
    edit((local_s3, local_bucket), "alpha", RACE_TYPE="OBJECT_AVOIDANCE", NUMBER_OF_OBSTACLES="3.0",
         RANDOMIZE_OBSTACLE_LOCATIONS="True")
    edit((local_s3, local_bucket), "beta", RACE_TYPE="HEAD_TO_BOT", NUMBER_OF_BOT_CARS="3")
    done = import_droa(setup, "--wait")
    assert done.returncode == 0, done.stderr
    models = {m.name: m for m in droa.models}
    alpha, beta = models["alpha-up"], models["beta-up"]
    assert (alpha.status, beta.status) == ("READY", "READY")
    assert alpha.training_params["NUMBER_OF_OBSTACLES"] == 3  # the uploaded yaml holds the number 3
    assert alpha.describe()["trainingConfig"]["objectAvoidanceConfig"] == {"numberOfObjects": 3}
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: run 1 (beta): DRoA records RACE_TYPE 'HEAD_TO_BOT' as a time trial (it knows only TIME_TRIAL and "
        "OBJECT_AVOIDANCE): the bot cars are not part of what it records."
    ]
    assert beta.describe()["trainingConfig"]["raceType"] == "TIME_TRIAL"


def test_a_plain_track_name_runs_the_way_the_models_own_yaml_says(
    setup: Setup, droa: FakeDroa, local_s3: SeaweedServer, local_bucket: str
) -> None:
    edit((local_s3, local_bucket), "alpha", WORLD_NAME="2022_april_open", REVERSE_DIR="True")
    edit((local_s3, local_bucket), "beta", WORLD_NAME="2022_april_open")
    done = import_droa(setup)
    assert done.returncode == 0, done.stderr
    models = {m.name: m for m in droa.models}
    assert models["alpha-up"].track == ("2022_april_open", "CLOCKWISE")
    assert models["beta-up"].track == ("2022_april_open", "COUNTER_CLOCKWISE")
    # DRoA validates the reward function on the route of the direction it recorded.
    assert (models["alpha-up"].track_name, models["beta-up"].track_name) == (
        "2022_april_open_cw", "2022_april_open_ccw")


def test_a_bare_500_from_the_import_is_a_sentence_that_says_what_to_check(setup: Setup, droa: FakeDroa) -> None:
    droa.internal_error = True  # DRoA's ImportModel function fails without a modelled error
    done = import_droa(setup)
    assert done.returncode == 1
    assert (
        "import of 'alpha-up' into droa FAILED: DRoA failed POST /importmodel with HTTP 500 and gave no reason. "
        "It answers so when it cannot store what training_params.yaml says (NUMBER_OF_OBSTACLES not a whole "
        "number, OBJECT_POSITIONS entries without a lane) or when its ImportModel function fails; check the "
        "model's training_params.yaml and that function's log in CloudWatch."
    ) in done.stderr
    assert "{}" not in done.stderr


def test_a_model_record_droa_left_broken_is_named_before_anything_is_copied(setup: Setup, droa: FakeDroa) -> None:
    # An earlier import (by an older client) gave DRoA a count it could not store.
    status, _ = import_(droa, folder(droa, {"RACE_TYPE": "OBJECT_AVOIDANCE", "NUMBER_OF_OBSTACLES": "3.0",
                                            "RANDOMIZE_OBSTACLE_LOCATIONS": True}))
    assert status == 500
    before = len(droa.s3_calls)
    done = import_droa(setup)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line == (
        f"drtransfer: error: DRoA cannot list the models of {USERNAME!r} (HTTP 500: Training item not found): one "
        "of them has no training record, which an import DRoA answered with HTTP 500 leaves behind, and until it "
        "is gone every import fails; a DRoA administrator has to delete that model's item (status IMPORTING) from "
        "DRoA's DynamoDB table."
    )
    assert len(droa.s3_calls) == before and len(droa.models) == 1
