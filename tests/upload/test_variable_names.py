"""A misspelt ``DR_*`` name in a run file (issue 14 point 2): the plan warns with the nearest DRfC name, and a
model prefix that falls back to DRfC's default says so."""

from __future__ import annotations

import json
from pathlib import Path

from drtransfer.samples import seed_model
from tests.upload.conftest import SCALE, Drfc


def typo_run_file(drfc: Drfc) -> Path:
    """A run file whose model prefix is misspelt on line 3, so DRfC's default prefix applies; an older
    training left a model there, which the upload would take."""
    seed_model(drfc.local.client(), drfc.local_bucket, "rl-deepracer-sagemaker", checkpoints=(1,), best=1, scale=SCALE)
    run_file = drfc.files.system_env.parent / "exp-a.env"
    run_file.write_text(
        "DR_RUN_ID=0\n"
        "DR_WORLD_NAME=reInvent2019_track\n"
        "DR_LOCAL_S3_MODLE_PREFIX=alpha\n"
        "DR_UPLOAD_S3_PREFIX=exp-a-up\n"
    )
    return run_file


def test_a_misspelt_variable_is_named_with_its_nearest_drfc_name(drfc: Drfc) -> None:
    run_file = typo_run_file(drfc)
    args = [str(run_file), "--system-env", str(drfc.files.system_env), "-d", "--processes", "0"]
    result = drfc.run("upload", *args)
    warning = (
        f"{run_file} line 3: DR_LOCAL_S3_MODLE_PREFIX is not a DRfC variable; did you mean DR_LOCAL_S3_MODEL_PREFIX?"
    )
    assert f"warning: {warning}" in result.stderr
    plan = result.stderr[result.stderr.index("  run 0 (rl-deepracer-sagemaker): ") :]
    source, target = f"s3://{drfc.local_bucket}/rl-deepracer-sagemaker (default)", f"s3://{drfc.upload_bucket}/exp-a-up"
    assert f"    {source} -> {target}\n" in plan or f"    from {source}\n    to   {target}\n" in plan

    as_json = drfc.run("upload", *args, "--json")
    (line,) = [json.loads(text) for text in as_json.stdout.splitlines()]
    assert line["warnings"] == [warning]
    assert line["source"] == f"s3://{drfc.local_bucket}/rl-deepracer-sagemaker"
    assert line["source_default"] is True


def test_known_names_give_no_warning_and_no_default_mark(drfc: Drfc) -> None:
    args = [str(drfc.files.run_files[0]), "--system-env", str(drfc.files.system_env), "-d", "--processes", "0"]
    result = drfc.run("upload", *args)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr and "(default)" not in result.stderr
    as_json = drfc.run("upload", *args, "--json")
    (line,) = [json.loads(text) for text in as_json.stdout.splitlines()]
    assert line["warnings"] == [] and line["source_default"] is False


def test_a_misspelt_system_env_variable_is_warned_once_for_all_runs(drfc: Drfc) -> None:
    system_env = drfc.files.system_env
    system_env.write_text(system_env.read_text() + "DR_UPLAOD_S3_ROLE=arn:aws:iam::123456789012:role/x\n")
    line_number = len(system_env.read_text().splitlines())
    args = [*map(str, drfc.files.run_files[:2]), "--system-env", str(system_env), "-d", "--processes", "0"]
    result = drfc.run("upload", *args)
    assert result.returncode == 0, result.stderr
    warning = (
        f"{system_env} line {line_number}: DR_UPLAOD_S3_ROLE is not a DRfC variable; did you mean DR_UPLOAD_S3_ROLE?"
    )
    assert result.stderr.count(f"warning: {warning}") == 1
    as_json = drfc.run("upload", *args, "--json")
    assert [json.loads(text)["warnings"] for text in as_json.stdout.splitlines()] == [[warning], [warning]]
