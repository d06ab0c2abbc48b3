"""``drtransfer prune``: refuses without a verified backup, never touches best or last, dry run by
default, deletes only what the manifest verifies, and reports the freed size."""

from __future__ import annotations

import json

from drtransfer.samples import checkpoint_name
from tests.infra.drfc import DrfcSetup, json_lines
from tests.models.conftest import backup, objects


def prune(drfc: DrfcSetup, *args: str) -> tuple[int, list[dict[str, object]], str]:
    done = drfc.run("prune", *drfc.upload_args("0"), "--json", "--processes", "0", *args)
    return done.returncode, json_lines(done.stdout), done.stderr


def checkpoint_keys(number: int) -> list[str]:
    name = checkpoint_name(number)
    return [f"model/{name}{s}" for s in (".data-00000-of-00001", ".index", ".meta")] + [f"model/model_{number}.pb"]


def test_prune_refuses_without_a_verified_backup(drfc: DrfcSetup) -> None:
    before = objects(drfc.local, drfc.local_bucket, "alpha")
    code, lines, err = prune(drfc, "--keep", "0", "--yes")
    assert code == 2 and not lines
    [sentence] = err.splitlines()
    assert "no verified backup" in sentence and "drtransfer backup" in sentence
    assert objects(drfc.local, drfc.local_bucket, "alpha") == before


def test_prune_dry_run_then_yes_never_touches_best_or_last(drfc: DrfcSetup) -> None:
    backup(drfc, "0")
    before = objects(drfc.local, drfc.local_bucket, "alpha")
    code, [line], err = prune(drfc, "--keep", "0")
    assert code == 0, err
    assert line["delete"] == [1, 3] and line["status"] == "dry-run"
    assert set(line["kept"]) == {"2", "4"}  # best and last
    expected = sum(before[k]["size"] for n in (1, 3) for k in checkpoint_keys(n))
    assert line["would_free"] == expected and line["freed"] == 0
    assert objects(drfc.local, drfc.local_bucket, "alpha") == before  # dry run: nothing deleted
    code, [line], err = prune(drfc, "--keep", "0", "--yes")
    assert code == 0, err
    assert line["freed"] == expected and line["status"] == "ok"
    after = objects(drfc.local, drfc.local_bucket, "alpha")
    assert sorted(after) == sorted(k for k in before if k not in {*checkpoint_keys(1), *checkpoint_keys(3)})
    for number in (2, 4):
        for key in checkpoint_keys(number):
            assert after[key]["body"] == before[key]["body"]


def test_prune_keeps_the_newest_and_what_the_backup_does_not_verify(drfc: DrfcSetup) -> None:
    backup(drfc, "0")
    client = drfc.local.client()
    # checkpoint 1 changed since the backup: its files no longer match the manifest
    key = f"alpha/{checkpoint_keys(1)[1]}"
    client.put_object(Bucket=drfc.local_bucket, Key=key, Body=b"retrained")
    code, [line], err = prune(drfc, "--keep", "1", "--yes")
    assert code == 0, err
    assert line["delete"] == [3]
    kept = dict(line["kept"])  # type: ignore[call-overload]
    assert "not verified in the backup" in kept["1"]
    assert set(kept) == {"1", "2", "4"}
    left = objects(drfc.local, drfc.local_bucket, "alpha")
    assert not any(k in left for k in checkpoint_keys(3))
    assert all(k in left for n in (1, 2, 4) for k in checkpoint_keys(n))
    # a later backup still describes the pruned checkpoint, which stays in the backup
    backup(drfc, "0")
    manifest_raw = (
        drfc.upload.client()
        .get_object(Bucket=drfc.upload_bucket, Key="backups/alpha/drtransfer-backup.json")["Body"]
        .read()
    )
    assert all(k in json.loads(manifest_raw)["objects"] for k in checkpoint_keys(3))
