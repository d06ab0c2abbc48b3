"""``drtransfer backup``: three runs at once, incremental, the manifest last and self-describing, a
target killed mid-backup, ``dr-upload-model -A``, and bad input."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from drtransfer import __version__
from drtransfer.locals3 import SeaweedServer
from drtransfer.samples import checkpoint_name, seed_model
from tests.conftest import start_seaweed
from tests.infra.drfc import DrfcSetup, json_lines, seed_drfc
from tests.models.conftest import MANIFEST, RUNS, assert_manifest_matches, backup, manifest, objects


def test_three_runs_backed_up_at_once_with_self_describing_manifests(drfc: DrfcSetup) -> None:
    lines = backup(drfc)
    assert sorted(lines) == ["0", "1", "2"]
    for run_id, prefix in RUNS:
        line = lines[run_id]
        assert line["status"] == "ok", line
        assert line["target"] == f"s3://{drfc.upload_bucket}/backups/{prefix}/"
        assert line["order"][-1] == MANIFEST  # written last
        data = assert_manifest_matches(drfc, prefix)
        assert data["source"] == f"s3://{drfc.local_bucket}/{prefix}/"
        assert data["version"] == __version__
        assert data["checkpoint"] == 4
        assert data["created"].endswith("+00:00")
        assert data["variables"]["DR_LOCAL_S3_MODEL_PREFIX"] == prefix
        assert not [name for name in data["variables"] if "SECRET" in name or "ACCESS_KEY" in name]
        held = data["objects"]
        # everything travels: every checkpoint, index files, metrics, ip/, yaml, reward function
        for number in (1, 2, 3, 4):
            assert f"model/{checkpoint_name(number)}.data-00000-of-00001" in held
            assert f"model/model_{number}.pb" in held
        for key in ("model/deepracer_checkpoints.json", "model/.coach_checkpoint", "model/.ready",
                    "ip/hyperparameters.json", "ip/done", "training_params.yaml", "reward_function.py",
                    "metrics/TrainingMetrics.json"):  # fmt: skip
            assert key in held, key
        # no secret of either server in the manifest
        raw = (str(manifest(drfc, prefix))).encode()
        assert drfc.local.secret_key.encode() not in raw and drfc.upload.secret_key.encode() not in raw


def test_second_backup_moves_only_new_objects_and_updates_the_manifest_last(drfc: DrfcSetup) -> None:
    backup(drfc, "0")
    before = manifest(drfc, "alpha")
    # more training: checkpoints 5 and 6 and a new index; the old ones stay
    client = drfc.local.client()
    seeded = seed_model(client, drfc.local_bucket, "alpha-more", checkpoints=(5, 6), best=5, scale=0.01)
    changed = ["model/deepracer_checkpoints.json", "model/.coach_checkpoint"]
    suffixes = (".data-00000-of-00001", ".index", ".meta")
    new = [f"model/{checkpoint_name(n)}{s}" for n in (5, 6) for s in suffixes] + [
        "model/model_5.pb",
        "model/model_6.pb",
    ]
    assert set(new) <= set(seeded.sizes)
    for key in new + changed:
        client.copy_object(Bucket=drfc.local_bucket, Key=f"alpha/{key}",
                           CopySource={"Bucket": drfc.local_bucket, "Key": f"alpha-more/{key}"})  # fmt: skip
    time.sleep(1.1)  # LastModified has a one-second resolution
    line = backup(drfc, "0")["0"]
    assert line["status"] == "ok"
    assert sorted(line["order"][:-1]) == sorted(new + changed)  # only what is new or changed moved
    assert line["order"][-1] == MANIFEST
    assert line["copied"] == len(new) + len(changed)
    data = assert_manifest_matches(drfc, "alpha")
    assert data["checkpoint"] == 6 and before["checkpoint"] == 4
    held = objects(drfc.upload, drfc.upload_bucket, "backups/alpha")
    stamps = _modified(drfc, "backups/alpha")
    assert stamps[MANIFEST] >= max(stamps.values())
    assert len(held) - 1 == len(data["objects"])
    # a third backup without training copies nothing and leaves the manifest as it is
    again = backup(drfc, "0")["0"]
    assert again["copied"] == 0 and again["order"] == []
    assert manifest(drfc, "alpha") == data


def _modified(drfc: DrfcSetup, prefix: str) -> dict[str, Any]:
    listed = drfc.upload.client().list_objects_v2(Bucket=drfc.upload_bucket, Prefix=prefix + "/")
    return {item["Key"][len(prefix) + 1 :]: item["LastModified"] for item in listed["Contents"]}


def test_target_killed_mid_backup_then_rerun_gives_a_matching_manifest(
    tmp_path: Path, local_s3: SeaweedServer, local_bucket: str
) -> None:
    target = start_seaweed(tmp_path / "target")  # a server of its own, to kill and restart
    try:
        _kill_mid_backup_then_rerun(tmp_path, target, local_s3, local_bucket)
    finally:
        target.stop(graceful=False)


def _kill_mid_backup_then_rerun(
    tmp_path: Path, target: SeaweedServer, local_s3: SeaweedServer, local_bucket: str
) -> None:
    target.create_bucket("bucket")
    drfc = seed_drfc(
        tmp_path / "drfc", local_s3, target, local_bucket, "bucket", RUNS, checkpoints=(1, 2, 3, 4, 5, 6), best=2,
        scale=0.12, environ={"DRTRANSFER_STATE_DIR": str(tmp_path / "state")},
    )  # fmt: skip
    fail_fast = (  # a dead target fails its models after 3 s without progress (the default waits 120 s)
        "client_max_attempts=1 max_attempts=2 retry_base_delay=0.2 retry_max_delay=0.5 connect_timeout=2 "
        "stall_deadline=3"
    )
    running = drfc.popen("backup", *drfc.upload_args(), "-f", "--json", "--processes", "1", "--concurrency", "2",
                         env=drfc.env(DRTRANSFER_ENGINE=fail_fast + " abort_timeout=5"))  # fmt: skip
    client = target.client()
    deadline = time.monotonic() + 120
    while client.list_objects_v2(Bucket="bucket").get("KeyCount", 0) < 5:
        assert time.monotonic() < deadline and running.poll() is None, "the backup did not get under way"
        time.sleep(0.05)
    target.kill()
    out, err = running.communicate(timeout=240)
    target.start()
    assert running.returncode == 1, err
    statuses = {line["run_id"]: line["status"] for line in json_lines(out)}
    assert "failed" in statuses.values(), out
    for line in json_lines(out):
        if line["status"] == "failed":  # no manifest: a half backup is never taken for a whole one
            prefix = dict(RUNS)[line["run_id"]]
            keys = objects(target, "bucket", f"backups/{prefix}")
            assert MANIFEST not in keys
    listed = {e["prefix"]: e for e in json_lines(drfc.run("models", *drfc.upload_args(), "--json").stdout)}
    for line in json_lines(out):
        if line["status"] == "failed":  # drtransfer models calls it unfinished
            entry = listed.get(f"backups/{dict(RUNS)[line['run_id']]}")
            assert entry is None or ("unfinished" in entry["error"] and entry["backed_up"] is None), entry
    again = drfc.run("backup", *drfc.upload_args(), "-f", "--json", "--processes", "0")
    assert again.returncode == 0, again.stderr
    for _, prefix in RUNS:
        data_raw = target.client().get_object(Bucket="bucket", Key=f"backups/{prefix}/{MANIFEST}")["Body"].read()
        held = objects(target, "bucket", f"backups/{prefix}")
        source = objects(local_s3, local_bucket, prefix)
        data = json.loads(data_raw)
        held.pop(MANIFEST)
        assert sorted(held) == sorted(data["objects"])
        for key, entry in data["objects"].items():
            if key.startswith("custom_files/"):
                continue
            assert held[key]["size"] == entry["size"]
            assert hashlib.md5(held[key]["body"]).digest() == hashlib.md5(source[key]["body"]).digest(), key


def test_dr_upload_model_a_backs_up_the_whole_prefix(drfc: DrfcSetup) -> None:
    done = drfc.run(*drfc.upload_args("1"), "-A", "-f", "--json", "--processes", "0", command="dr-upload-model")
    assert done.returncode == 0, done.stderr
    [line] = json_lines(done.stdout)
    assert line["status"] == "ok" and line["target"].endswith("/backups/beta/")
    assert_manifest_matches(drfc, "beta")


def test_dr_upload_model_a_refuses_upload_only_switches(drfc: DrfcSetup) -> None:
    done = drfc.run(*drfc.upload_args("1"), "-A", "-b", "-f", command="dr-upload-model")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--best" in done.stderr
    assert not objects(drfc.upload, drfc.upload_bucket, "backups")


def test_missing_backup_bucket_is_one_sentence_and_nothing_written(drfc: DrfcSetup) -> None:
    drfc.add_to_system_env({"DR_BACKUP_S3_BUCKET": "no-such-bucket"})
    done = drfc.run("backup", *drfc.upload_args(), "-f")
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert "'no-such-bucket' does not exist" in line and "DR_BACKUP_S3_BUCKET" in line
    assert not objects(drfc.upload, drfc.upload_bucket, "")


def test_backup_variables_are_not_warned_about(drfc: DrfcSetup) -> None:
    drfc.add_to_system_env({"DR_BACKUP_S3_PREFIX": "keep/safe"})
    done = drfc.run("backup", *drfc.upload_args("2"), "-f", "--processes", "0")
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr
    assert MANIFEST in objects(drfc.upload, drfc.upload_bucket, "keep/safe/gamma")


def test_no_backup_bucket_at_all_is_one_sentence(drfc: DrfcSetup) -> None:
    text = drfc.files.system_env.read_text()
    drfc.files.system_env.write_text("\n".join(line for line in text.splitlines() if "UPLOAD_S3_BUCKET" not in line))
    done = drfc.run("backup", *drfc.upload_args("0"), "-f")
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert "No backup bucket defined" in line and "DR_BACKUP_S3_BUCKET" in line
    assert not objects(drfc.upload, drfc.upload_bucket, "")


def test_dry_run_lists_the_copies_and_writes_nothing(drfc: DrfcSetup) -> None:
    done = drfc.run("backup", *drfc.upload_args("0"), "-d", "--processes", "0")
    assert done.returncode == 0, done.stderr
    assert "would copy" in done.stdout and MANIFEST in done.stdout
    assert not objects(drfc.upload, drfc.upload_bucket, "")


def test_backup_to_another_endpoint_with_its_own_profile(drfc: DrfcSetup) -> None:
    """DR_BACKUP_S3_ENDPOINT_URL and DR_BACKUP_S3_PROFILE: here the local store itself (a server-side
    copy), which drtransfer models lists as a backup and not as one more local model."""
    drfc.add_to_system_env({
        "DR_BACKUP_S3_ENDPOINT_URL": drfc.local.url, "DR_BACKUP_S3_PROFILE": "drt-local",
        "DR_BACKUP_S3_BUCKET": drfc.local_bucket, "DR_BACKUP_S3_PREFIX": "safe",
    })  # fmt: skip
    line = backup(drfc, "0")["0"]
    assert line["status"] == "ok" and line["target"] == f"s3://{drfc.local_bucket}/safe/alpha/"
    held = objects(drfc.local, drfc.local_bucket, "safe/alpha")
    source = objects(drfc.local, drfc.local_bucket, "alpha")
    assert all(held[key]["body"] == value["body"] for key, value in source.items())
    assert not objects(drfc.upload, drfc.upload_bucket, "")
    assert backup(drfc, "0")["0"]["copied"] == 0  # incremental on the same store too
    listed = json_lines(drfc.run("models", *drfc.upload_args("0"), "--json", "--no-uploads").stdout)
    assert [(e["location"], e["prefix"]) for e in listed if "alpha" in e["prefix"]] == [
        ("local", "alpha"),
        ("backup", "safe/alpha"),
    ]
