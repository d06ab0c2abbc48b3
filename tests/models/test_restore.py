"""``drtransfer restore``: a backup back into the local bucket byte for byte, ``--pretrained`` writing
the three variables, an uploaded model in the import layout, and bad input (one sentence, exit 2,
nothing written)."""

from __future__ import annotations

import json

from drtransfer.envfile import read_env_file
from tests.infra.drfc import DrfcSetup, json_lines
from tests.models.conftest import MANIFEST, backup, objects


def restore(drfc: DrfcSetup, url: str, *args: str) -> tuple[int, str, str]:
    done = drfc.run("restore", url, *args, "--system-env", str(drfc.files.system_env), "--processes", "0", "--json")
    return done.returncode, done.stdout, done.stderr


def run_file(drfc: DrfcSetup, run_id: str = "0") -> str:
    return str(drfc.files.run_files[int(run_id)])


def test_restore_into_a_new_prefix_is_byte_for_byte(drfc: DrfcSetup) -> None:
    backup(drfc, "0")
    url = f"s3://{drfc.upload_bucket}/backups/alpha"
    code, out, err = restore(drfc, url, "--as", "alpha-restored", "--run-file", run_file(drfc))
    assert code == 0, err
    [line] = json_lines(out)
    assert line["status"] == "ok" and line["kind"] == "backup"
    restored = objects(drfc.local, drfc.local_bucket, "alpha-restored")
    backed = objects(drfc.upload, drfc.upload_bucket, "backups/alpha")
    backed.pop(MANIFEST)
    assert sorted(restored) == sorted(backed)
    for key, held in backed.items():
        assert restored[key]["body"] == held["body"], key
    original = objects(drfc.local, drfc.local_bucket, "alpha")
    for key, held in original.items():
        assert restored[key]["body"] == held["body"], key


def test_pretrained_writes_the_three_variables_atomically(drfc: DrfcSetup) -> None:
    backup(drfc, "0")
    target = drfc.files.run_files[1]
    before = target.read_text()
    code, out, err = restore(
        drfc, f"s3://{drfc.upload_bucket}/backups/alpha", "--as", "alpha-base", "--pretrained", str(target),
        "--checkpoint", "best",
    )  # fmt: skip
    assert code == 0, err
    [line] = json_lines(out)
    assert line["pretrained"] == {
        "DR_LOCAL_S3_PRETRAINED": "True",
        "DR_LOCAL_S3_PRETRAINED_PREFIX": "alpha-base",
        "DR_LOCAL_S3_PRETRAINED_CHECKPOINT": "best",
    }
    after = target.read_text()
    assert after.startswith(before)  # every other byte as it was
    values = read_env_file(target, {}, {}).values()
    assert values["DR_LOCAL_S3_PRETRAINED"] == "True"
    assert values["DR_LOCAL_S3_PRETRAINED_PREFIX"] == "alpha-base"
    assert values["DR_LOCAL_S3_PRETRAINED_CHECKPOINT"] == "best"
    assert not list(target.parent.glob(f".{target.name}.*"))  # no temporary file left
    # again, into another prefix and with a number: the lines are replaced, not added
    code, _, err = restore(
        drfc, f"s3://{drfc.upload_bucket}/backups/alpha", "--as", "alpha-base-2", "--pretrained", str(target),
        "--checkpoint", "3",
    )  # fmt: skip
    assert code == 0, err
    text = target.read_text()
    assert text.count("DR_LOCAL_S3_PRETRAINED_PREFIX=") == 1 and "DR_LOCAL_S3_PRETRAINED_PREFIX=alpha-base-2" in text
    assert "DR_LOCAL_S3_PRETRAINED_CHECKPOINT=3" in text


def test_restore_of_an_uploaded_model_in_the_import_layout(drfc: DrfcSetup) -> None:
    up = drfc.run("upload", *drfc.upload_args("2"), "-f", "-b", "--processes", "0")
    assert up.returncode == 0, up.stderr
    code, out, err = restore(drfc, f"s3://{drfc.upload_bucket}/gamma-up", "--as", "gamma-back", "--run-file",
                             run_file(drfc, "2"))  # fmt: skip
    assert code == 0, err
    [line] = json_lines(out)
    assert line["kind"] == "import layout"
    assert "no drtransfer-backup.json" in line["note"] and "checkpoint 2" in line["note"]
    restored = objects(drfc.local, drfc.local_bucket, "gamma-back")
    uploaded = objects(drfc.upload, drfc.upload_bucket, "gamma-up")
    assert sorted(restored) == sorted(uploaded)
    assert all(restored[k]["body"] == v["body"] for k, v in uploaded.items())


def test_restore_over_an_existing_prefix_is_refused_unless_overwrite(drfc: DrfcSetup) -> None:
    backup(drfc, "0")
    url = f"s3://{drfc.upload_bucket}/backups/alpha"
    before = objects(drfc.local, drfc.local_bucket, "beta")
    code, out, err = restore(drfc, url, "--as", "beta", "--run-file", run_file(drfc))
    assert code == 2 and not out
    [sentence] = err.splitlines()
    assert "already holds" in sentence and "--overwrite" in sentence
    assert objects(drfc.local, drfc.local_bucket, "beta") == before
    code, _, err = restore(drfc, url, "--as", "beta", "--run-file", run_file(drfc), "--overwrite")
    assert code == 0, err
    restored = objects(drfc.local, drfc.local_bucket, "beta")
    alpha = objects(drfc.local, drfc.local_bucket, "alpha")
    assert {k: v["body"] for k, v in restored.items() if not k.startswith("custom_files/")} == {
        k: v["body"] for k, v in alpha.items()
    }


def test_a_backup_that_does_not_match_its_manifest_is_refused(drfc: DrfcSetup) -> None:
    backup(drfc, "0")
    client = drfc.upload.client()
    key = f"backups/alpha/{MANIFEST}"
    data = json.loads(client.get_object(Bucket=drfc.upload_bucket, Key=key)["Body"].read())
    data["objects"]["model/model_1.pb"]["size"] += 1
    client.put_object(Bucket=drfc.upload_bucket, Key=key, Body=json.dumps(data).encode())
    code, out, err = restore(drfc, f"s3://{drfc.upload_bucket}/backups/alpha", "--as", "alpha-x",
                             "--run-file", run_file(drfc))  # fmt: skip
    assert code == 2 and not out
    [sentence] = err.splitlines()
    assert "does not match its manifest" in sentence and "model/model_1.pb" in sentence
    assert not objects(drfc.local, drfc.local_bucket, "alpha-x")


def test_bad_urls_and_checkpoints_are_one_sentence(drfc: DrfcSetup) -> None:
    backup(drfc, "0")
    target = drfc.files.run_files[1]
    before = target.read_text()
    cases = [
        ("alpha", "--as", "x", "--run-file", run_file(drfc)),
        (f"s3://{drfc.upload_bucket}/nothing-here", "--as", "x", "--run-file", run_file(drfc)),
        (f"s3://{drfc.upload_bucket}/backups/alpha", "--as", "x", "--pretrained", str(target), "--checkpoint", "99"),
        (f"s3://{drfc.upload_bucket}/backups/alpha", "--as", "x", "--pretrained", str(target), "--checkpoint", "top"),
    ]
    for args in cases:
        code, out, err = restore(drfc, *args)
        assert code == 2 and not out, (args, err)
        assert len(err.splitlines()) == 1, err
    assert target.read_text() == before
    assert not objects(drfc.local, drfc.local_bucket, "x")
