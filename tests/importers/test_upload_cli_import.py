"""``drtransfer upload -i / -I NAME`` and ``dr-upload-model -I NAME`` end to end: the real CLI in a
subprocess, three seeded DRfC runs on two SeaweedFS servers (tests/upload's setup), the fake AWS DeepRacer
console and the fake DRoA (moto's Cognito). Upload and import results are reported side by side; a failed
import never hides a successful upload; every name is checked before anything is copied."""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drtransfer.locals3 import SeaweedServer
from drtransfer.samples import checkpoint_name
from tests.conftest import PASSWORD, list_tree
from tests.importers.conftest import ROLE, edit_training_params, import_target_values
from tests.infra.console_server import ConsoleModel, FakeConsole
from tests.infra.drfc import DrfcSetup, json_lines
from tests.infra.droa_server import FakeDroa
from tests.infra.fakehttp import Response
from tests.infra.json_docs import assert_documented
from tests.upload.conftest import RUNS, make_drfc
from tests.upload.test_upload_command import assert_uploaded

PREFIXES = dict(RUNS)  # run id -> model prefix; each uploads to "<prefix>-up"
LAST = 11  # the seeded runs' last checkpoint (best is 2)


@dataclass
class Setup:
    drfc: DrfcSetup
    home: Path

    def run(self, *args: str, command: str = "drtransfer", stdin: str = "") -> subprocess.CompletedProcess[str]:
        # The DRoA credential cache and ~/.aws/models (the console's service definition) stay in tmp_path.
        env = self.drfc.env(DRTRANSFER_CACHE_DIR=str(self.home / "cache"), HOME=str(self.home))
        return self.drfc.run(*args, command=command, env=env, stdin=stdin)

    def upload(self, *args: str, runs: tuple[str, ...] = (), stdin: str = "") -> subprocess.CompletedProcess[str]:
        return self.run("upload", *self.drfc.upload_args(*runs), "-f", "--processes", "1", "--no-progress", *args,
                        stdin=stdin)

    def uploaded(self, prefix: str = "") -> dict[str, bytes]:
        return list_tree(self.drfc.upload, self.drfc.upload_bucket, prefix)


@pytest.fixture
def setup(tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
          droa: FakeDroa, console: FakeConsole) -> Setup:
    drfc = make_drfc(tmp_path, local_s3, upload_s3, local_bucket, upload_bucket)
    # One status poll finishes an import: the CLI polls every 10 s, and the first poll comes at once.
    droa.polls_until_done = console.polls_until_done = 1
    drfc.add_to_system_env(import_target_values(droa, console))
    (tmp_path / "home").mkdir()
    return Setup(drfc, tmp_path / "home")


def test_upload_i_imports_each_run_into_the_console_under_its_upload_prefix(
    setup: Setup, console: FakeConsole
) -> None:
    done = setup.upload("-i", "--to", "aws-console", "--wait", "--json", "--description", "nightly")
    assert done.returncode == 0, done.stderr
    bucket = setup.drfc.upload_bucket
    lines = json_lines(done.stdout)
    assert [line["run_id"] for line in lines] == ["0", "1", "2"]
    for line in lines:  # one line per model: the upload result, with the import result beside it
        assert_documented("upload", line)
        prefix = PREFIXES[line["run_id"]]
        assert (line["status"], line["target"], line["checkpoint"]) == ("ok", f"s3://{bucket}/{prefix}-up",
                                                                        checkpoint_name(LAST))
        imported = line["import"]
        assert (imported["target"], imported["model_name"], imported["status"], imported["service_status"]) == (
            "aws-console", f"{prefix}-up", "ready", "READY")
        assert imported["source"] == f"s3://{bucket}/{prefix}-up"
        assert imported["model_id"] == next(m.arn for m in console.models if m.name == f"{prefix}-up")
        assert_uploaded(setup.drfc, prefix, f"{prefix}-up", LAST)
    requests = console.operations("ImportModel")
    assert [(r["Name"], r["ModelArtifactsS3Path"], r["RoleArn"], r["Type"], r["Description"]) for r in requests] == [
        (f"{p}-up", f"s3://{bucket}/{p}-up", ROLE, "REINFORCEMENT_LEARNING", "nightly") for _r, p in RUNS]
    # The name check (ListModels) came before any import; --wait read each model's status.
    assert [op for op, _ in console.calls].index("ImportModel") > [op for op, _ in console.calls].index("ListModels")
    assert len(console.operations("GetModel")) == 3


def test_upload_i_without_json_or_wait_prints_each_submitted_import(setup: Setup, console: FakeConsole) -> None:
    done = setup.upload("-i", "--to", "aws-console", runs=("0", "1"))
    assert done.returncode == 0, done.stderr
    for run_id in ("0", "1"):
        prefix = PREFIXES[run_id]
        arn = next(m.arn for m in console.models if m.name == f"{prefix}-up")
        assert f"run {run_id} ({prefix}): uploaded s3://{setup.drfc.upload_bucket}/{prefix}-up/" in done.stdout
        assert f"run {run_id} ({prefix}): import of '{prefix}-up' into aws-console submitted (id {arn})" in done.stdout
    assert console.operations("GetModel") == []  # no --wait: submitted, not polled


def test_upload_i_into_droa_assembles_and_imports_several_runs(setup: Setup, droa: FakeDroa) -> None:
    done = setup.upload("-i", "--to", "droa", "--password-stdin", "--wait", "--json", "-b",
                        "--description", "nightly run 7", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    lines = json_lines(done.stdout)
    assert [line["run_id"] for line in lines] == ["0", "1", "2"]
    models = {m.name: m for m in droa.models}
    assert sorted(models) == ["alpha-up", "beta-up", "gamma-up"]
    assembled = list_tree(setup.drfc.upload, droa.bucket, "uploads/models/")
    for line in lines:
        prefix = PREFIXES[line["run_id"]]
        assert line["status"] == "ok"
        assert_uploaded(setup.drfc, prefix, f"{prefix}-up", 2)  # the upload bucket got its copy too
        imported, model = line["import"], models[f"{prefix}-up"]
        assert (imported["target"], imported["status"], imported["model_id"]) == ("droa", "ready", model.model_id)
        assert (model.status, model.description, model.s3_bucket) == ("READY", "nightly run 7", droa.bucket)
        root, _, folder = model.s3_path.rpartition("/")
        assert root == "uploads/models" and str(uuid.UUID(folder)) == folder
        assert imported["source"] == f"s3://{droa.bucket}/{model.s3_path}"
        files = {k.removeprefix(model.s3_path + "/") for k in assembled if k.startswith(model.s3_path + "/")}
        # DRoA's layout of the chosen (-b: best) checkpoint, with DRoA's additions.
        name = checkpoint_name(2)
        assert {"model_metadata.json", "reward_function.py", "training_params.yaml", "hyperparameters.json",
                "ip/hyperparameters.json", "model/.coach_checkpoint", "model/deepracer_checkpoints.json",
                f"model/{name}.index", f"model/{name}.meta", f"model/{name}.data-00000-of-00001", "model/model_2.pb",
                "metrics/training/training-metrics.json"} <= files
        assert not any(f.startswith(f"model/{checkpoint_name(LAST)}") for f in files)
    assert len({m.s3_path for m in droa.models}) == 3


def test_a_failed_import_is_reported_beside_the_successful_upload(
    setup: Setup, droa: FakeDroa, console: FakeConsole, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DRoA refuses beta with a 400 (a DRoA release whose track list differs from the client's catalog): the
    # upload stands, the import fails.
    droa.reject["beta-up"] = ("Invalid track configuration. Track reInvent2019_track is not available in direction "
                              "COUNTER_CLOCKWISE.")
    done = setup.upload("-i", "--to", "droa", "--password-stdin", runs=("0", "1"), stdin=PASSWORD + "\n")
    assert done.returncode == 1
    [alpha] = droa.models
    assert alpha.name == "alpha-up"
    assert f"run 0 (alpha): import of 'alpha-up' into droa submitted (id {alpha.model_id})" in done.stdout
    assert "run 1 (beta): uploaded s3://" in done.stdout and "2 of 2 model(s) uploaded" in done.stdout
    assert "run 1 (beta): import of 'beta-up' into droa FAILED: " in done.stderr
    assert "Track reInvent2019_track is not available in direction COUNTER_CLOCKWISE" in done.stderr
    assert_uploaded(setup.drfc, "beta", "beta-up", LAST)

    # The console: someone takes the name 'gamma-up' right after drtransfer checked it.
    listed = console.list_models

    def list_then_take(body: dict[str, Any]) -> Response:
        answer = listed(body)
        if "NextToken" not in json.loads(answer.body):  # the last page: the check is done
            console.models.append(ConsoleModel("gamma-up", console.models[0].arn + "x"))
        return answer

    monkeypatch.setattr(console, "list_models", list_then_take)
    done = setup.upload("-i", "--to", "aws-console", "--json", runs=("2",))
    assert done.returncode == 1
    [line] = json_lines(done.stdout)
    assert (line["run_id"], line["status"], line["error"]) == ("2", "ok", None)
    assert (line["import"]["status"], line["import"]["message"]) == (
        "failed", "The AWS DeepRacer console refused to import 'gamma-up': ConflictException: "
                  "Model gamma-up already exists.")
    assert_uploaded(setup.drfc, "gamma", "gamma-up", LAST)


@pytest.mark.parametrize(
    ("args", "runs", "edit", "message"),
    [
        (("-I", "bad_name", "--to", "aws-console"), ("0",), None,
         "The import name 'bad_name' (given with -I/--name) contains '_', which is not allowed"),
        (("-I", "bad_name", "--to", "droa", "--password-stdin"), ("0",), None, "contains '_', which is not allowed"),
        (("-i", "--to", "aws-console"), ("0", "1"), ("1", "beta.v2"),
         "The import name 'beta.v2' (DR_UPLOAD_S3_PREFIX of run 1 (beta)) contains '.', which is not allowed"),
        (("-i", "--to", "aws-console"), ("0", "1"), ("0", "taken-name"),
         "A model named 'taken-name' already exists in the AWS DeepRacer console"),
        (("-I", "one-name", "--to", "aws-console"), ("0", "1"), None,
         "The import name 'one-name' was given for 2 runs"),
        (("-i", "-L", "--to", "aws-console"), ("0",), None, "Combination of -i and -L is not permitted"),
    ],
    ids=["underscore-console", "underscore-droa", "dot-in-prefix", "taken-name", "one-name-two-runs", "local-target"],
)
def test_import_problems_are_refused_before_anything_is_copied(
    setup: Setup, droa: FakeDroa, console: FakeConsole,
    args: tuple[str, ...], runs: tuple[str, ...], edit: tuple[str, str] | None, message: str,
) -> None:
    if edit is not None:
        run_file = setup.drfc.files.run_files[int(edit[0])]
        old = f"DR_UPLOAD_S3_PREFIX={PREFIXES[edit[0]]}-up"
        run_file.write_text(run_file.read_text().replace(old, f"DR_UPLOAD_S3_PREFIX={edit[1]}"))
    done = setup.upload(*args, runs=runs, stdin=PASSWORD + "\n")
    assert done.returncode == 2, done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("drtransfer: error: ") and message in error
    assert "Ready to upload" not in done.stderr  # refused before the plan was even shown
    assert setup.uploaded() == {}  # nothing at the upload bucket, for any run
    assert console.operations("ImportModel") == [] and droa.s3_calls == [] and droa.models == []


def test_a_dry_run_with_i_checks_the_names_and_imports_nothing(setup: Setup, console: FakeConsole) -> None:
    done = setup.upload("-d", "-i", "--to", "aws-console", runs=("0",))
    assert done.returncode == 0, done.stderr
    assert "run 0 (alpha): would import as 'alpha-up' into aws-console" in done.stdout
    assert setup.uploaded() == {} and console.calls == []
    refused = setup.upload("-d", "-I", "bad.name", "--to", "aws-console", runs=("0",))
    assert refused.returncode == 2 and "'bad.name' (given with -I/--name) contains '.'" in refused.stderr


def test_dr_upload_model_capital_i_imports_one_run_under_that_name(setup: Setup, droa: FakeDroa) -> None:
    # DR_DROA_URL is set, so the default import target is DRoA.
    done = setup.run(*setup.drfc.upload_args("1"), "-f", "-I", "my-beta-7", "--password-stdin", "--processes", "1",
                     "--no-progress", command="dr-upload-model", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    [model] = droa.models
    assert model.name == "my-beta-7"
    assert f"run 1 (beta): import of 'my-beta-7' into droa submitted (id {model.model_id})" in done.stdout
    assert "Ready to upload model(s):" in done.stderr  # DRfC's wording
    assert_uploaded(setup.drfc, "beta", "beta-up", LAST)
    assert set(setup.uploaded()) == set(setup.uploaded("beta-up/"))  # only this run was uploaded


def test_obstacle_values_droa_cannot_store_are_refused_before_anything_is_uploaded(
    setup: Setup, droa: FakeDroa
) -> None:
    drfc = setup.drfc
    edit_training_params(drfc.local, drfc.local_bucket, "alpha", {
        "RACE_TYPE": "OBJECT_AVOIDANCE", "NUMBER_OF_OBSTACLES": "+3", "RANDOMIZE_OBSTACLE_LOCATIONS": "True"})
    edit_training_params(drfc.local, drfc.local_bucket, "beta", {
        "RACE_TYPE": "OBJECT_AVOIDANCE", "NUMBER_OF_OBSTACLES": "2", "OBJECT_POSITIONS": ["0.30", "0.60"]})
    done = setup.upload("-i", "--to", "droa", "--password-stdin", runs=("0", "1"), stdin=PASSWORD + "\n")
    assert done.returncode == 2, done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("drtransfer: error: ")
    assert ("run 0 (alpha) cannot be imported into DRoA: Number of obstacle positions is invalid. "
            "NUMBER_OF_OBSTACLES is '+3'; DRoA stores only a whole number from 1 to 6.") in error
    assert ("run 1 (beta) cannot be imported into DRoA: Please enter a valid number for Lane Number. "
            "OBJECT_POSITIONS has '0.30'; DRoA stores each as 'fraction,lane' (lane 1 or -1).") in error
    assert setup.uploaded() == {}  # nothing at the upload bucket
    assert droa.s3_calls == [] and droa.models == [] and ("POST", "/importmodel") not in droa.api_calls


def test_an_invalid_droa_name_is_refused_with_droas_sentence(setup: Setup, droa: FakeDroa) -> None:
    done = setup.upload("-i", "-I", "alpha_v2", "--to", "droa", "--password-stdin", runs=("0",),
                        stdin=PASSWORD + "\n")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "drtransfer: error: The import name 'alpha_v2' (given with -I/--name) contains '_', which is not allowed; "
        "DRoA: Model name must contain only alphanumeric characters and hyphens; and must be less than or equal to "
        "64 characters in length. Choose one with -I NAME / --name NAME."
    )
    assert setup.uploaded() == {} and droa.s3_calls == [] and droa.api_calls == []
