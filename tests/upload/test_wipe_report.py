"""``-w`` through the real command: car packages that ``drtransfer car-zip`` wrote are kept, and every
deletion is reported (summary count, ``-v``, ``-d``, ``--json``)."""

from __future__ import annotations

import json

from tests.conftest import list_tree
from tests.infra.drfc import DrfcSetup
from tests.upload.test_upload_command import expected_tree

EXTRA = "alpha-up/notes/extra.txt"


def summary_line(stdout: str, label: str) -> str:
    (line,) = [line for line in stdout.splitlines() if line.startswith(f"{label}: uploaded ")]
    return line


def test_wipe_keeps_the_car_package_and_reports_the_other_deletions(drfc: DrfcSetup) -> None:
    made = drfc.run("car-zip", *drfc.upload_args("0"), "-f")
    assert made.returncode == 0, made.stderr
    client = drfc.upload.client()
    archive_key = "alpha-up/alpha-up.tar.gz"
    archive = client.get_object(Bucket=drfc.upload_bucket, Key=archive_key)["Body"].read()
    client.put_object(Bucket=drfc.upload_bucket, Key="alpha-up/model/stale.ckpt.index", Body=b"old")
    # A .tar.gz at the key car-zip would use, but not written by it: -w deletes it.
    client.put_object(Bucket=drfc.upload_bucket, Key="beta-up/beta-up.tar.gz", Body=b"someone else's")

    dry = drfc.run("upload", *drfc.upload_args("0", "1"), "-d", "-w", "--processes", "0")
    assert dry.returncode == 0, dry.stderr
    archive_url = f"s3://{drfc.upload_bucket}/{archive_key}"
    assert f"  keep   {archive_url} (car package written by drtransfer car-zip)" in dry.stdout.splitlines()
    assert f"delete {archive_url}" not in dry.stdout
    assert f"delete s3://{drfc.upload_bucket}/beta-up/beta-up.tar.gz" in dry.stdout

    done = drfc.run("upload", *drfc.upload_args("0", "1"), "-f", "-w", "--processes", "0")

    assert done.returncode == 0, done.stderr
    alpha = list_tree(drfc.upload, drfc.upload_bucket, "alpha-up/")
    assert alpha.pop(archive_key) == archive
    alpha.pop("alpha-up/training_params.yaml")
    assert alpha == expected_tree(drfc, "alpha", "alpha-up", 11)
    assert "beta-up/beta-up.tar.gz" not in list_tree(drfc.upload, drfc.upload_bucket, "beta-up/")
    assert summary_line(done.stdout, "run 0 (alpha)").endswith(", 1 object(s) deleted)")
    assert summary_line(done.stdout, "run 1 (beta)").endswith(", 1 object(s) deleted)")


def test_every_deletion_is_reported_in_the_summary_verbose_dry_run_and_json(drfc: DrfcSetup) -> None:
    client = drfc.upload.client()
    client.put_object(Bucket=drfc.upload_bucket, Key=EXTRA, Body=b"extra")
    url = f"s3://{drfc.upload_bucket}/{EXTRA}"

    dry = drfc.run("upload", *drfc.upload_args("0"), "-d", "-w", "--processes", "0")
    assert dry.returncode == 0, dry.stderr
    assert f"  delete {url} (5 B) [delete]" in dry.stdout.splitlines()
    assert f"run 0 (alpha): would write s3://{drfc.upload_bucket}/alpha-up/ and delete 1 object(s)" in dry.stdout
    assert list_tree(drfc.upload, drfc.upload_bucket) == {EXTRA: b"extra"}

    dry_json = drfc.run("upload", *drfc.upload_args("0"), "-d", "-w", "--json", "--processes", "0")
    assert dry_json.returncode == 0, dry_json.stderr
    (line,) = [json.loads(text) for text in dry_json.stdout.splitlines()]
    assert line["deleted"] == [url]
    assert list_tree(drfc.upload, drfc.upload_bucket) == {EXTRA: b"extra"}

    verbose = drfc.run("upload", *drfc.upload_args("0"), "-f", "-w", "-v", "--processes", "0")
    assert verbose.returncode == 0, verbose.stderr
    assert f"run 0 (alpha): deleted {url}" in verbose.stderr.splitlines()
    assert summary_line(verbose.stdout, "run 0 (alpha)").endswith(", 1 object(s) deleted)")
    assert EXTRA not in list_tree(drfc.upload, drfc.upload_bucket)

    client.put_object(Bucket=drfc.upload_bucket, Key=EXTRA, Body=b"extra")
    as_json = drfc.run("upload", *drfc.upload_args("0"), "-f", "-w", "--json", "--processes", "0")
    assert as_json.returncode == 0, as_json.stderr
    (line,) = [json.loads(text) for text in as_json.stdout.splitlines()]
    assert line["deleted"] == [url]
    assert line["objects"] == line["skipped"]  # the deletion is not counted as an object written
    assert EXTRA not in list_tree(drfc.upload, drfc.upload_bucket)


def test_without_wipe_nothing_is_deleted_and_json_says_so(drfc: DrfcSetup) -> None:
    client = drfc.upload.client()
    client.put_object(Bucket=drfc.upload_bucket, Key=EXTRA, Body=b"extra")

    done = drfc.run("upload", *drfc.upload_args("0"), "-f", "--json", "--processes", "0")

    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(text) for text in done.stdout.splitlines()]
    assert line["deleted"] == []
    assert list_tree(drfc.upload, drfc.upload_bucket, EXTRA) == {EXTRA: b"extra"}
