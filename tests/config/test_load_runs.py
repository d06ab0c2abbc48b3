"""load_runs: which runs, which system.env, the four precedence layers, DRfC derivations and checks."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import pytest

from drtransfer.config import load_runs
from drtransfer.endpoints import Credentials, resolve_credentials
from drtransfer.errors import ConfigError
from tests.config.conftest import KEYS, DrfcDir


def creds(profile: str) -> Credentials:
    return Credentials(*KEYS[profile])


# ---- one run, defaults and derivations ----------------------------------------------------------------


def test_a_run_file_with_its_system_env_gives_the_drfc_values(drfc: DrfcDir) -> None:
    drfc.system()
    run_file = drfc.run("run.env", "0", "rl-deepracer-sagemaker")

    (run,) = load_runs([run_file], environ=drfc.environ)

    assert (run.run_id, run.local_bucket, run.model_prefix) == ("0", "bucket", "rl-deepracer-sagemaker")
    assert (run.upload_bucket, run.upload_prefix) == ("upload-bucket", "rl-deepracer-sagemaker-1")
    assert run.reward_key == "custom_files/reward_function.py"
    assert run.metrics_prefix == "rl-deepracer-sagemaker/metrics"
    assert run.local.url == "http://localhost:9000" and run.local.profile == "minio"
    assert run.local.credentials == creds("minio")
    assert run.upload is not None and run.upload.url is None and run.upload.profile == "default"
    assert run.upload.credentials == creds("default")
    assert (run.local.name, run.upload.name, run.region) == ("local", "upload", "us-east-1")
    assert (run.run_file, run.system_file) == (run_file, drfc.root / "system.env")
    assert run.values["DR_WORLD_NAME"] == "reinvent_base"
    assert run.values["DR_CONFIG"] == str(run_file.resolve())
    assert run.values["DR_DIR"] == str(drfc.root.resolve())
    assert pickle.loads(pickle.dumps(run)) == run


def test_template_defaults_fill_unset_and_empty_variables(drfc: DrfcDir) -> None:
    drfc.write("system.env", "DR_CLOUD=local\nDR_UPLOAD_S3_BUCKET=up\nDR_LOCAL_S3_BUCKET=\n")
    run_file = drfc.write("run.env", "DR_UPLOAD_S3_PREFIX=target\nDR_LOCAL_S3_CUSTOM_FILES_PREFIX=my_files\n")

    (run,) = load_runs([run_file], environ=drfc.environ)

    assert (run.run_id, run.local_bucket, run.model_prefix) == ("0", "bucket", "rl-deepracer-sagemaker")
    assert run.reward_key == "my_files/reward_function.py"
    assert run.metrics_prefix == "rl-deepracer-sagemaker/metrics"
    assert run.region == "us-east-1"
    assert run.values["DR_LOCAL_S3_PROFILE"] == "minio" and run.values["DR_UPLOAD_S3_PROFILE"] == "default"


def test_prefixes_lose_surrounding_slashes(drfc: DrfcDir) -> None:
    drfc.system()
    run_file = drfc.run("run.env", "0", "/models/alpha/", upload_prefix="/uploads/alpha/")
    (run,) = load_runs([run_file], environ=drfc.environ)
    assert (run.model_prefix, run.upload_prefix) == ("models/alpha", "uploads/alpha")


@pytest.mark.parametrize(
    ("cloud_lines", "url", "profile"),
    [
        ("DR_CLOUD=local\n", "http://localhost:9000", "minio"),
        ("DR_CLOUD=Azure\n", "http://localhost:9000", "minio"),
        ("DR_CLOUD=remote\nDR_REMOTE_MINIO_URL=http://mynas:9000\n", "http://mynas:9000", "minio"),
        ("DR_CLOUD=aws\n", None, "default"),
        ("DR_CLOUD=local\nDR_LOCAL_S3_ENDPOINT_URL=http://127.0.0.1:9100\n", "http://127.0.0.1:9100", "minio"),
        ("DR_CLOUD=aws\nDR_LOCAL_S3_PROFILE=other\n", None, "other"),
    ],
)
def test_dr_cloud_decides_the_local_endpoint_and_profile(
    drfc: DrfcDir, cloud_lines: str, url: str | None, profile: str
) -> None:
    drfc.write("system.env", cloud_lines + "DR_UPLOAD_S3_BUCKET=up\n")
    (run,) = load_runs([drfc.run("run.env", "0", "m")], environ=drfc.environ)
    assert (run.local.url, run.local.profile, run.local.credentials) == (url, profile, creds(profile))


@pytest.mark.parametrize(
    ("system", "message"),
    [
        ("DR_UPLOAD_S3_BUCKET=up\n", "DR_CLOUD is not set for run 0 ("),
        ("DR_CLOUD=lokal\nDR_UPLOAD_S3_BUCKET=up\n", "DR_CLOUD='lokal' for run 0 ("),
        ("DR_CLOUD=remote\nDR_UPLOAD_S3_BUCKET=up\n", "DR_CLOUD=remote needs DR_REMOTE_MINIO_URL for run 0"),
        (
            "DR_CLOUD=local\nDR_LOCAL_S3_ENDPOINT_URL=localhost:9000\nDR_UPLOAD_S3_BUCKET=up\n",
            "DR_LOCAL_S3_ENDPOINT_URL='localhost:9000' for run 0 (",
        ),
    ],
)
def test_unusable_endpoint_settings_are_named(drfc: DrfcDir, system: str, message: str) -> None:
    drfc.write("system.env", system)
    with pytest.raises(ConfigError) as error:
        load_runs([drfc.run("run.env", "0", "m")], environ=drfc.environ)
    assert message in str(error.value) and str(error.value).endswith(".")


def test_upload_endpoint_url_and_profile(drfc: DrfcDir) -> None:
    drfc.system("DR_UPLOAD_S3_ENDPOINT_URL=http://127.0.0.1:8333\nDR_UPLOAD_S3_PROFILE=other\n")
    (run,) = load_runs([drfc.run("run.env", "0", "m")], environ=drfc.environ)
    assert run.upload is not None
    assert (run.upload.url, run.upload.profile, run.upload.credentials) == (
        "http://127.0.0.1:8333",
        "other",
        creds("other"),
    )


# ---- credentials -----------------------------------------------------------------------------------------


def test_exported_local_keys_win_over_the_local_profile_and_stay_out_of_values(drfc: DrfcDir) -> None:
    drfc.system()
    environ = {**drfc.environ, "DR_LOCAL_ACCESS_KEY_ID": "HANDKEY01", "DR_LOCAL_SECRET_ACCESS_KEY": "hand-secret"}
    (run,) = load_runs([drfc.run("run.env", "0", "m")], environ=environ)
    assert run.local.credentials == Credentials("HANDKEY01", "hand-secret")
    assert run.upload is not None and run.upload.credentials == creds("default")
    assert "DR_LOCAL_SECRET_ACCESS_KEY" not in run.values and "DR_LOCAL_ACCESS_KEY_ID" not in run.values
    assert "hand-secret" not in repr(run)


def test_a_missing_profile_is_named(drfc: DrfcDir) -> None:
    drfc.system("DR_UPLOAD_S3_PROFILE=deepracer-upload\n")
    with pytest.raises(ConfigError, match=r"^The upload AWS profile 'deepracer-upload' does not exist"):
        load_runs([drfc.run("run.env", "0", "m")], environ=drfc.environ)


def test_credentials_come_from_the_given_environment_not_the_process(
    drfc: DrfcDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoy = tmp_path / "decoy-credentials"
    decoy.write_text("[minio]\naws_access_key_id = DECOY\naws_secret_access_key = decoy\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(decoy))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "PROCESSKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "process-secret")

    assert resolve_credentials("local", profile="minio", environ=drfc.environ) == creds("minio")
    # No profile: the default chain reads the given environment's keys, else its [default] profile.
    given = {**drfc.environ, "AWS_ACCESS_KEY_ID": "GIVENKEY", "AWS_SECRET_ACCESS_KEY": "given-secret"}
    assert resolve_credentials("upload", profile=None, environ=given) == Credentials("GIVENKEY", "given-secret")
    assert resolve_credentials("upload", profile=None, environ=drfc.environ) == creds("default")
    # ~/.aws is found through the given HOME when no file variable is set.
    home_only = {"HOME": drfc.environ["HOME"], "AWS_EC2_METADATA_DISABLED": "true"}
    assert resolve_credentials("local", profile="other", environ=home_only) == creds("other")


def test_without_environ_the_process_environment_is_used(drfc: DrfcDir, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("DR_", "AWS_")):
            monkeypatch.delenv(key)
    for key, value in {**drfc.environ, "DR_UPLOAD_S3_BUCKET": "process-bucket"}.items():
        monkeypatch.setenv(key, value)
    drfc.system()

    (run,) = load_runs([drfc.run("run.env", "0", "m")])

    assert run.upload_bucket == "process-bucket"
    assert run.local.credentials == creds("minio")
    assert run.upload is not None and run.upload.credentials == creds("default")


def test_a_missing_default_profile_falls_back_to_the_default_chain(drfc: DrfcDir, tmp_path: Path) -> None:
    no_default = tmp_path / "no-default"
    no_default.write_text("[minio]\naws_access_key_id = M\naws_secret_access_key = m\n")
    environ = {**drfc.environ, "AWS_SHARED_CREDENTIALS_FILE": str(no_default), "AWS_CONFIG_FILE": str(no_default)}
    role = {**environ, "AWS_ACCESS_KEY_ID": "ROLEKEY", "AWS_SECRET_ACCESS_KEY": "role-secret"}
    assert resolve_credentials("upload", profile="default", environ=role) == Credentials("ROLEKEY", "role-secret")
    assert resolve_credentials("upload", profile="default", environ=environ) is None


# ---- precedence -------------------------------------------------------------------------------------------


def test_precedence_flag_over_environment_over_run_file_over_system_file(drfc: DrfcDir) -> None:
    drfc.system("DR_WORLD_NAME=from-system\nDR_CAR_COLOR=system-red\nDR_RACE_TYPE=system\nDR_TRAIN_RTF=system\n")
    run_file = drfc.run("run.env", "0", "m", extra="DR_CAR_COLOR=run-blue\nDR_TRAIN_RTF=run\n")
    environ = {**drfc.environ, "DR_RACE_TYPE": "environment", "DR_TRAIN_RTF": "environment"}

    (run,) = load_runs([run_file], environ=environ, overrides={"DR_TRAIN_RTF": "flag"})

    assert run.values["DR_WORLD_NAME"] == "reinvent_base"  # run file over system file
    assert run.values["DR_CAR_COLOR"] == "run-blue"
    assert run.values["DR_RACE_TYPE"] == "environment"  # environment over both files
    assert run.values["DR_TRAIN_RTF"] == "flag"  # flag over everything


def test_environment_and_flags_set_the_targets(drfc: DrfcDir) -> None:
    drfc.system()
    run_file = drfc.run("run.env", "0", "m")
    environ = {**drfc.environ, "DR_UPLOAD_S3_BUCKET": "env-bucket"}
    (run,) = load_runs([run_file], environ=environ, overrides={"DR_UPLOAD_S3_PREFIX": "flag-prefix"})
    assert (run.upload_bucket, run.upload_prefix) == ("env-bucket", "flag-prefix")


def test_layers_replace_values_without_re_expanding_the_files(drfc: DrfcDir) -> None:
    drfc.system()
    run_file = drfc.run("run.env", "0", "file-model")  # DR_UPLOAD_S3_PREFIX=$DR_LOCAL_S3_MODEL_PREFIX-1
    (run,) = load_runs([run_file], environ=drfc.environ, overrides={"DR_LOCAL_S3_MODEL_PREFIX": "flag-model"})
    assert (run.model_prefix, run.upload_prefix, run.metrics_prefix) == (
        "flag-model",
        "file-model-1",
        "file-model/metrics",
    )


def test_activated_shell_values_do_not_leak_into_other_runs(drfc: DrfcDir) -> None:
    drfc.system()
    run_a = drfc.run("run-a.env", "0", "model-a", extra="DR_CAR_COLOR=Red\n")
    run_b = drfc.run("run-b.env", "1", "model-b")
    run_c = drfc.run("run-c.env", "2", "model-c", extra="DR_CAR_COLOR=Blue\n")
    # Everything `source bin/activate.sh run-a.env` exported.
    activated_a = {key: value for key, value in load_runs([run_a], environ=drfc.environ)[0].values.items()}
    environ = drfc.activated(run_a, activated_a)

    a, b, c = load_runs([run_a, run_b, run_c], environ=environ)

    assert (a.model_prefix, a.upload_prefix, a.run_id) == ("model-a", "model-a-1", "0")
    assert (b.model_prefix, b.upload_prefix, b.run_id) == ("model-b", "model-b-1", "1")
    assert (c.model_prefix, c.upload_prefix, c.run_id) == ("model-c", "model-c-1", "2")
    assert "DR_CAR_COLOR" not in b.values  # A's own variable
    assert c.values["DR_CAR_COLOR"] == "Blue"
    assert b.values["DR_CONFIG"] == str(run_b.resolve())
    assert b.local.credentials == creds("minio")


def test_in_an_activated_shell_a_variable_set_by_hand_still_counts(drfc: DrfcDir) -> None:
    drfc.system()
    run_a = drfc.run("run-a.env", "0", "model-a")
    run_b = drfc.run("run-b.env", "1", "model-b")
    activated_a = dict(load_runs([run_a], environ=drfc.environ)[0].values)
    environ = {
        **drfc.activated(run_a, activated_a),
        "DR_UPLOAD_S3_ENDPOINT_URL": "http://127.0.0.1:8333",  # not in the files: set by hand
        "DR_LOCAL_S3_ENDPOINT_URL": "http://127.0.0.1:9100",  # differs from what activation derived
        "DR_LOCAL_ACCESS_KEY_ID": "HANDKEY01",  # differs from the minio profile's keys
        "DR_LOCAL_SECRET_ACCESS_KEY": "hand-secret",
    }

    a, b = load_runs([run_a, run_b], environ=environ)

    for run in (a, b):
        assert run.upload is not None and run.upload.url == "http://127.0.0.1:8333"
        assert run.local.url == "http://127.0.0.1:9100"
        assert run.local.credentials == Credentials("HANDKEY01", "hand-secret")


def test_activation_derived_values_follow_each_runs_own_files(drfc: DrfcDir) -> None:
    drfc.system()
    run_a = drfc.run("run-a.env", "0", "model-a")
    remote_system = drfc.write(
        "remote/system.env",
        "DR_CLOUD=remote\nDR_REMOTE_MINIO_URL=http://mynas:9000\nDR_UPLOAD_S3_BUCKET=up\nDR_LOCAL_S3_PROFILE=other\n",
    )
    run_b = drfc.run("remote/run-b.env", "1", "model-b")
    environ = drfc.activated(run_a, dict(load_runs([run_a], environ=drfc.environ)[0].values))

    (b,) = load_runs([run_b], system_env=remote_system, environ=environ)

    assert b.local.url == "http://mynas:9000"  # A's exported localhost:9000 is activation's, not the user's
    assert b.local.credentials == creds("other")  # A's exported minio keys belong to A's profile


def test_a_stale_exported_copy_of_a_file_value_loses_to_the_file(
    drfc: DrfcDir, caplog: pytest.LogCaptureFixture
) -> None:
    drfc.system()
    run_a = drfc.run("run-a.env", "0", "model-a", upload_prefix="model-a-upload-2")
    run_b = drfc.run("run-b.env", "1", "model-b")
    # Activated while run-a.env still said model-a-upload-1 (then `-1` incremented the file).
    activated_a = dict(load_runs([run_a], environ=drfc.environ)[0].values, DR_UPLOAD_S3_PREFIX="model-a-upload-1")
    environ = drfc.activated(run_a, activated_a)

    with caplog.at_level(logging.WARNING, logger="drtransfer.config"):
        a, b = load_runs([run_a, run_b], environ=environ)
        (only,) = load_runs(environ=environ)

    assert a.upload_prefix == only.upload_prefix == "model-a-upload-2"
    assert b.upload_prefix == "model-b-1"
    assert "DR_UPLOAD_S3_PREFIX is exported as model-a-upload-1, but" in caplog.text


def test_without_run_files_the_activated_run_file_is_read_again(drfc: DrfcDir) -> None:
    drfc.system()
    run_a = drfc.run("run-a.env", "4", "model-a")
    environ = drfc.activated(run_a, dict(load_runs([run_a], environ=drfc.environ)[0].values))
    environ["DR_WORLD_NAME"] = "reinvent_base"  # unchanged copy: not an override
    environ["DR_TRACK_NOTE"] = "by-hand"

    (run,) = load_runs(environ=environ)

    assert (run.run_id, run.model_prefix, run.run_file, run.system_file) == (
        "4",
        "model-a",
        run_a,
        drfc.root / "system.env",
    )
    assert run.values["DR_TRACK_NOTE"] == "by-hand"


def test_without_dr_config_the_exported_variables_are_the_run(drfc: DrfcDir) -> None:
    environ = {
        **drfc.environ,
        "DR_CLOUD": "remote",
        "DR_REMOTE_MINIO_URL": "http://127.0.0.1:9000",
        "DR_RUN_ID": "3",
        "DR_LOCAL_S3_MODEL_PREFIX": "exported-model",
        "DR_UPLOAD_S3_BUCKET": "exported-bucket",
        "DR_UPLOAD_S3_PREFIX": "exported-target",
    }
    (run,) = load_runs(environ=environ)
    assert (run.run_id, run.model_prefix, run.upload_bucket, run.upload_prefix) == (
        "3",
        "exported-model",
        "exported-bucket",
        "exported-target",
    )
    assert (run.run_file, run.local.url) == (None, "http://127.0.0.1:9000")


def test_nothing_to_load_gives_no_runs(drfc: DrfcDir) -> None:
    assert load_runs(environ=drfc.environ) == []


def test_a_dangling_dr_config_is_named(drfc: DrfcDir) -> None:
    environ = {**drfc.environ, "DR_CONFIG": str(drfc.root / "gone.env")}
    with pytest.raises(ConfigError, match=r"^DR_CONFIG names .*gone.env, which does not exist"):
        load_runs(environ=environ)


# ---- targets ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bucket", ["not-defined", ""])
def test_a_missing_upload_bucket_is_named(drfc: DrfcDir, bucket: str) -> None:
    drfc.system(bucket=bucket)
    run_file = drfc.run("run.env", "5", "m")
    with pytest.raises(ConfigError) as error:
        load_runs([run_file], environ=drfc.environ)
    assert str(error.value) == (
        f"No upload bucket defined for run 5 ({run_file}): set DR_UPLOAD_S3_BUCKET in system.env or the run file, "
        f"or use -L to upload into the local bucket."
    )


@pytest.mark.parametrize("prefix", ["not-defined", "", "$DR_UNSET"])
def test_a_missing_upload_prefix_is_named(drfc: DrfcDir, prefix: str) -> None:
    drfc.system()
    run_file = drfc.run("run.env", "5", "m", upload_prefix=prefix)
    with pytest.raises(ConfigError, match=r"^No upload prefix defined for run 5 \(.*run.env\): set DR_UPLOAD_S3_"):
        load_runs([run_file], environ=drfc.environ)


def test_inspection_does_not_need_a_target(drfc: DrfcDir) -> None:
    drfc.system(bucket="not-defined")
    (run,) = load_runs([drfc.run("run.env", "0", "m", upload_prefix="")], environ=drfc.environ, require_target=False)
    assert (run.upload, run.upload_bucket, run.upload_prefix) == (None, "", "")


def test_local_target_uploads_into_the_local_bucket(drfc: DrfcDir) -> None:
    drfc.system(bucket="not-defined")
    (run,) = load_runs([drfc.run("run.env", "0", "m")], environ=drfc.environ, local_target=True)
    assert run.upload == run.local
    assert (run.upload_bucket, run.upload_prefix) == ("bucket", "m-1")


def test_local_target_equal_to_the_source_is_refused(drfc: DrfcDir) -> None:
    drfc.system()
    run_file = drfc.run("run.env", "0", "m", upload_prefix="$DR_LOCAL_S3_MODEL_PREFIX")
    with pytest.raises(ConfigError, match=r"^Target equals source for run 0 \(.*\) \(s3://bucket/m\)"):
        load_runs([run_file], environ=drfc.environ, local_target=True)
    # -p with -L always fails in DRfC for the same reason.
    with pytest.raises(ConfigError, match=r"^Target equals source"):
        load_runs(
            [drfc.run("run2.env", "0", "m")],
            environ=drfc.environ,
            local_target=True,
            overrides={"DR_LOCAL_S3_MODEL_PREFIX": "p", "DR_UPLOAD_S3_PREFIX": "p"},
        )


# ---- several runs -----------------------------------------------------------------------------------------


def test_runs_sharing_a_run_id_load_as_separate_runs(drfc: DrfcDir) -> None:
    drfc.system()
    first, second = drfc.run("a.env", "1", "model-a"), drfc.run("b.env", "1", "model-b")
    runs = load_runs([first, second], environ=drfc.environ)
    assert [(run.run_id, run.model_prefix, run.run_file) for run in runs] == [
        ("1", "model-a", first),
        ("1", "model-b", second),
    ]


def test_runs_sharing_a_model_prefix_are_refused_naming_both_files(drfc: DrfcDir) -> None:
    drfc.system()
    first = drfc.run("a.env", "1", "same-model", upload_prefix="a")
    second = drfc.run("b.env", "2", "same-model", upload_prefix="b")
    with pytest.raises(ConfigError, match=f"^{first} and {second} both train into s3://bucket/same-model; "):
        load_runs([first, second], environ=drfc.environ)


def test_runs_sharing_a_target_are_refused(drfc: DrfcDir) -> None:
    drfc.system()
    first = drfc.run("a.env", "1", "model-a", upload_prefix="shared")
    second = drfc.run("b.env", "2", "model-b", upload_prefix="shared")
    with pytest.raises(ConfigError, match=f"^{first} and {second} both upload to s3://upload-bucket/shared; "):
        load_runs([first, second], environ=drfc.environ)


def test_a_run_uploading_into_another_runs_training_prefix_is_refused(drfc: DrfcDir) -> None:
    drfc.system()
    first = drfc.run("a.env", "1", "model")  # target model-1 (DRfC's template rule)
    second = drfc.run("b.env", "2", "model-1", upload_prefix="model-1-copy")
    load_runs([first, second], environ=drfc.environ)  # different stores: fine
    with pytest.raises(ConfigError) as error:
        load_runs([first, second], environ=drfc.environ, local_target=True)
    assert str(error.value) == (
        f"{first} uploads to s3://bucket/model-1, where {second} trains; give it another DR_UPLOAD_S3_PREFIX."
    )


def test_the_same_file_given_twice_is_one_run(drfc: DrfcDir, monkeypatch: pytest.MonkeyPatch) -> None:
    drfc.system()
    run_file = drfc.run("run.env", "0", "m")
    monkeypatch.chdir(drfc.root)
    assert len(load_runs([run_file, Path("run.env")], environ=drfc.environ)) == 1


# ---- files: system.env and experiments --------------------------------------------------------------------


def test_a_missing_or_broken_run_file_is_named(drfc: DrfcDir) -> None:
    drfc.system()
    with pytest.raises(ConfigError, match=r"^The run file .*nowhere.env does not exist; check the path.$"):
        load_runs([drfc.root / "nowhere.env"], environ=drfc.environ)
    broken = drfc.run("run.env", "0", "m", extra="DR_CAR_COLOR = Red\n")
    with pytest.raises(ConfigError, match=f"^{broken} line 13: 'DR_CAR_COLOR' has spaces around '='"):
        load_runs([broken], environ=drfc.environ)
    drfc.system("DR_WORLD_NAME=$(whoami)\n")
    with pytest.raises(ConfigError, match=f"^{drfc.root / 'system.env'} line 15: the value of 'DR_WORLD_NAME' uses"):
        load_runs([drfc.run("good.env", "0", "m")], environ=drfc.environ)


def test_system_env_rule(drfc: DrfcDir, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    beside = elsewhere / "system.env"
    beside.write_text("DR_CLOUD=local\nDR_UPLOAD_S3_BUCKET=beside\n")
    run_file = elsewhere / "run.env"
    run_file.write_text("DR_LOCAL_S3_MODEL_PREFIX=m\nDR_UPLOAD_S3_PREFIX=t\n")
    explicit = tmp_path / "explicit.env"
    explicit.write_text("DR_CLOUD=local\nDR_UPLOAD_S3_BUCKET=explicit\n")
    in_dr_dir = drfc.system(bucket="dr-dir")
    with_dr_dir = {**drfc.environ, "DR_DIR": str(drfc.root)}

    def loaded(environ: dict[str, str], system_env: Path | None = None) -> tuple[str, Path | None]:
        (run,) = load_runs([run_file], environ=environ, system_env=system_env)
        return run.upload_bucket, run.system_file

    assert loaded(drfc.environ) == ("beside", beside)
    assert loaded(with_dr_dir) == ("dr-dir", in_dr_dir)
    assert loaded(with_dr_dir, explicit) == ("explicit", explicit)
    beside.unlink()
    with pytest.raises(ConfigError, match=f"^No system.env found for {run_file} \\(looked at {beside}\\); pass "):
        load_runs([run_file], environ=drfc.environ)
    with pytest.raises(ConfigError, match=r"^The system file .*missing.env does not exist"):
        load_runs([run_file], environ=drfc.environ, system_env=tmp_path / "missing.env")


def test_experiments_resolve_against_dr_dir_or_the_current_directory(
    drfc: DrfcDir, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    drfc.system()
    sprint1 = drfc.run("experiments/sprint-v1/run.env", "1", "sprint-v1")
    sprint2 = drfc.run("experiments/sprint-v2/run.env", "2", "sprint-v2")

    runs = load_runs(experiments=["sprint-v2", "sprint-v1"], environ={**drfc.environ, "DR_DIR": str(drfc.root)})
    assert [(r.run_file, r.values["DR_EXPERIMENT_NAME"]) for r in runs] == [
        (sprint2, "sprint-v2"),
        (sprint1, "sprint-v1"),
    ]

    monkeypatch.chdir(drfc.root)  # no DR_DIR: the current directory, system.env two levels up
    (run,) = load_runs(experiments=["sprint-v1"], environ=drfc.environ)
    assert (run.run_file, run.system_file) == (sprint1, drfc.root / "system.env")

    with pytest.raises(ConfigError, match=r"^Experiment directory .*experiments/sprint-v3 does not exist"):
        load_runs(experiments=["sprint-v3"], environ=drfc.environ)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^Experiment directory .*experiments/sprint-v1 does not exist"):
        load_runs(experiments=["sprint-v1"], environ=drfc.environ)


def test_all_experiments_finds_every_run_env(drfc: DrfcDir, tmp_path: Path) -> None:
    drfc.system()
    drfc.run("experiments/b-second/run.env", "2", "b")
    drfc.run("experiments/a-first/run.env", "1", "a")
    drfc.write("experiments/notes/README.md", "not an experiment\n")

    for directory in (drfc.root, drfc.root / "experiments"):
        runs = load_runs(all_experiments_dir=directory, environ=drfc.environ)
        assert [(r.model_prefix, r.values["DR_EXPERIMENT_NAME"]) for r in runs] == [("a", "a-first"), ("b", "b-second")]
        assert {r.system_file for r in runs} == {drfc.root / "system.env"}

    with pytest.raises(ConfigError, match=r"^No experiments/\*/run.env under "):
        load_runs(all_experiments_dir=tmp_path / "home", environ=drfc.environ)


def test_endpoints_that_differ_between_runs_get_different_names_where_runs_are_loaded(drfc: DrfcDir) -> None:
    # Three runs: the second names another MinIO, the third the same as the first.
    drfc.system()
    first = drfc.run("run-a.env", "0", "alpha")
    second = drfc.run("run-b.env", "1", "beta", extra="DR_LOCAL_S3_ENDPOINT_URL=http://127.0.0.1:9100\n")
    third = drfc.run("run-c.env", "2", "gamma")

    runs = load_runs([first, second, third], environ=drfc.environ)

    assert [run.local.name for run in runs] == ["local", "local-2", "local"]
    assert runs[1].local.url == "http://127.0.0.1:9100"
    assert len({run.upload.name for run in runs if run.upload}) == 1  # one upload endpoint, one name
