"""Runs sharing a DR_RUN_ID (DRfC's template sets 0 for every experiment) load, each with a key and a
label unique within the command."""

from __future__ import annotations

from drtransfer.config import load_runs
from tests.config.conftest import DrfcDir, run_env


def test_experiments_sharing_run_id_0_are_keyed_and_labelled_by_name(drfc: DrfcDir) -> None:
    drfc.system()
    for name in ("fast", "slow"):
        drfc.write(f"experiments/{name}/run.env", run_env("0", f"model-{name}"))
    runs = load_runs(experiments=["fast", "slow"], environ={**drfc.environ, "DR_DIR": str(drfc.root)})
    assert [(run.run_id, run.experiment, run.key) for run in runs] == [("0", "fast", "fast"), ("0", "slow", "slow")]
    assert [run.label for run in runs] == ["experiment fast (model-fast)", "experiment slow (model-slow)"]


def test_an_experiment_given_as_its_run_file_is_named_after_its_directory(drfc: DrfcDir) -> None:
    drfc.system()
    files = [drfc.write(f"experiments/{name}/run.env", run_env("0", f"model-{name}")) for name in ("a", "b")]
    runs = load_runs(files, environ=drfc.environ)
    assert [(run.experiment, run.key, run.label) for run in runs] == [
        ("a", "a", "experiment a (model-a)"),
        ("b", "b", "experiment b (model-b)"),
    ]


def test_a_unique_run_id_stays_the_key(drfc: DrfcDir) -> None:
    drfc.system()
    runs = load_runs([drfc.run("a.env", "1", "model-a"), drfc.run("b.env", "2", "model-b")], environ=drfc.environ)
    assert [(run.key, run.label) for run in runs] == [("1", "run 1 (model-a)"), ("2", "run 2 (model-b)")]


def test_run_files_sharing_a_run_id_are_keyed_by_file_name_then_position(drfc: DrfcDir) -> None:
    drfc.system()
    first, second = drfc.run("a.env", "1", "model-a"), drfc.run("b.env", "1", "model-b")
    runs = load_runs([first, second], environ=drfc.environ)
    assert [run.key for run in runs] == ["a.env", "b.env"]
    assert [run.label for run in runs] == ["run 1 (model-a)", "run 1 (model-b)"]
    # Same file name, same run id and same prefix in two buckets: only the position tells them apart.
    third = drfc.run("x/run.env", "1", "same", extra="DR_LOCAL_S3_BUCKET=b1\n")
    fourth = drfc.run("y/run.env", "1", "same", extra="DR_LOCAL_S3_BUCKET=b2\n", upload_prefix="same-2")
    runs = load_runs([third, fourth], system_env=drfc.root / "system.env", environ=drfc.environ)
    assert [run.key for run in runs] == ["#1", "#2"]
    assert [run.label for run in runs] == ["run 1 (s3://b1/same)", "run 1 (s3://b2/same)"]
