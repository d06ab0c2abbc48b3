"""Experiments that keep DRfC's template ``DR_RUN_ID=0`` (issue 14 point 1): one command uploads them all,
labelled by experiment; only the container car source, which finds containers by ``RUN_ID``, refuses them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.upload.conftest import RUNS, Drfc
from tests.upload.test_upload_command import assert_uploaded

EXPERIMENTS = (("fast", "alpha"), ("slow", "beta"), ("wide", "gamma"))


def write_experiments(drfc: Drfc) -> tuple[Path, list[Path]]:
    """``experiments/<name>/run.env`` for each experiment, all with the template's ``DR_RUN_ID=0``, each
    training into one seeded model and uploading to ``<name>-up``."""
    root = drfc.files.system_env.parent
    run_files = []
    for name, prefix in EXPERIMENTS:
        run_file = root / "experiments" / name / "run.env"
        run_file.parent.mkdir(parents=True)
        run_file.write_text(
            "DR_RUN_ID=0\n"
            "DR_WORLD_NAME=reInvent2019_track\n"
            f"DR_LOCAL_S3_MODEL_PREFIX={prefix}\n"
            f"DR_UPLOAD_S3_PREFIX={name}-up\n"
            "DR_LOCAL_S3_METRICS_PREFIX=$DR_LOCAL_S3_MODEL_PREFIX/metrics\n"
        )
        run_files.append(run_file)
    return root, run_files


def system_args(drfc: Drfc) -> list[str]:
    return ["--system-env", str(drfc.files.system_env)]


def planned_route(stderr: str, source: str, target: str) -> bool:
    """The plan's "source -> target" line, or its two lines when one would not fit 80 columns."""
    return f"    {source} -> {target}\n" in stderr or f"    from {source}\n    to   {target}\n" in stderr


def test_experiments_sharing_run_id_0_upload_in_one_command(drfc: Drfc) -> None:
    _root, run_files = write_experiments(drfc)
    result = drfc.run("upload", *map(str, run_files), *system_args(drfc), "-f", "-b", "--processes", "2")
    assert result.returncode == 0, result.stderr
    for name, prefix in EXPERIMENTS:
        assert_uploaded(drfc, prefix, f"{name}-up", 2)
        assert f"experiment {name} ({prefix}): uploaded s3://{drfc.upload_bucket}/{name}-up/" in result.stdout
        assert f"  experiment {name} ({prefix}): " in result.stderr  # the plan names each run by its experiment
        assert planned_route(result.stderr, f"s3://{drfc.local_bucket}/{prefix}", f"s3://{drfc.upload_bucket}/{name}-up")
    assert "DR_RUN_ID" not in result.stderr
    assert "3 of 3 model(s) uploaded" in result.stdout


def test_dry_run_of_experiments_sharing_run_id_0_lists_each_by_name(drfc: Drfc) -> None:
    _root, run_files = write_experiments(drfc)
    result = drfc.run("upload", *map(str, run_files), *system_args(drfc), "-d", "--processes", "0")
    assert result.returncode == 0, result.stderr
    for name, prefix in EXPERIMENTS:
        assert re.search(rf"^  experiment {name} \({prefix}\): [0-9.]+ [KM]iB(?:, |\n    )last: ", result.stderr, re.M)
        assert planned_route(result.stderr, f"s3://{drfc.local_bucket}/{prefix}", f"s3://{drfc.upload_bucket}/{name}-up")
        assert f"experiment {name} ({prefix}): would write s3://{drfc.upload_bucket}/{name}-up/" in result.stdout
    assert drfc.upload.client().list_objects_v2(Bucket=drfc.upload_bucket).get("KeyCount", 0) == 0


def test_all_experiments_sharing_run_id_0_upload_with_distinct_json_lines(drfc: Drfc) -> None:
    root, _run_files = write_experiments(drfc)
    result = drfc.run(
        "upload", "--all-experiments", str(root), *system_args(drfc), "-f", "--processes", "2", "--json"
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["run_id"], line["experiment"]) for line in lines] == [("0", name) for name, _ in EXPERIMENTS]
    assert len({line["key"] for line in lines}) == 3
    for line, (name, prefix) in zip(lines, EXPERIMENTS, strict=True):
        assert line["status"] == "ok", line
        assert line["target"] == f"s3://{drfc.upload_bucket}/{name}-up"
        assert_uploaded(drfc, prefix, f"{name}-up", 11)


def test_run_files_sharing_a_run_id_outside_experiments_get_distinct_labels(drfc: Drfc) -> None:
    directory = drfc.files.system_env.parent
    run_files = []
    for run_id, prefix in RUNS[:2]:
        text = drfc.files.run_files[int(run_id)].read_text().replace(f"DR_RUN_ID={run_id}\n", "DR_RUN_ID=7\n")
        run_file = directory / f"shared-{prefix}.env"
        run_file.write_text(text)
        run_files.append(run_file)
    result = drfc.run("upload", *map(str, run_files), *system_args(drfc), "-d", "--processes", "0", "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["run_id"] for line in lines] == ["7", "7"]
    assert len({line["key"] for line in lines}) == 2
    assert "  run 7 (alpha): " in result.stderr and "  run 7 (beta): " in result.stderr


def test_car_zip_from_container_refuses_runs_whose_containers_share_a_run_id(drfc: Drfc) -> None:
    _root, run_files = write_experiments(drfc)
    result = drfc.run(
        "car-zip", *map(str, run_files[:2]), *system_args(drfc), "--from", "container", "-L", "-f",
        env=drfc.env(DOCKER_HOST="unix:///nonexistent/docker.sock"),
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "drtransfer: error: --from container finds each run's training container by RUN_ID=<DR_RUN_ID>, and "
        "experiment fast (alpha) and experiment slow (beta) both use DR_RUN_ID=0, so their containers cannot be "
        "told apart; give each its own DR_RUN_ID, or package from S3 with --from s3."
    ]
