"""``-w`` deletes only inside a run's target prefix; empty, ``/``-only and bucket-root prefixes,
and prefixes holding another run's target or any run's training data, are refused; a dry run shows
exactly what would be deleted."""

from __future__ import annotations

import re

import pytest

from drtransfer.engine import EngineSettings, run_transfer
from drtransfer.locals3 import SeaweedServer
from drtransfer.operations import DeleteObject, ModelPlan, ObjectLocation
from tests.conftest import list_tree
from tests.reliability.conftest import Setup, check_target_model, single_sentence

INSIDE = ("alpha-up/model/9_Step-99.ckpt.index", "alpha-up/old/notes.txt", "alpha-up/a/b/c.bin")
OUTSIDE = ("alpha-up2/keep.txt", "alpha-u/keep", "alpha-upx", "alpha-up", "keep-at-root.txt", "beta-up/x")
DELETE_LINE = re.compile(r"^  delete s3://[^/]+/(\S+) \(\d+ B\)( \[delete\])?$")


def test_a_dry_run_shows_exactly_what_the_wipe_deletes(setup: Setup) -> None:
    first = setup.command("upload", *setup.upload_args("0"), "-f", "--processes", "0")
    assert first.returncode == 0, first.stderr
    client = setup.upload.client()
    for key in INSIDE + OUTSIDE:
        client.put_object(Bucket=setup.upload_bucket, Key=key, Body=b"stale")
    before = list_tree(setup.upload, setup.upload_bucket)

    dry = setup.command("upload", *setup.upload_args("0"), "-d", "-w", "--processes", "0")

    assert dry.returncode == 0, dry.stderr
    shown = [m.group(1) for line in dry.stdout.splitlines() if (m := DELETE_LINE.match(line))]
    assert sorted(shown) == sorted(INSIDE)
    assert list_tree(setup.upload, setup.upload_bucket) == before  # nothing deleted, nothing written

    wiped = setup.command("upload", *setup.upload_args("0"), "-w", "-f", "--processes", "0")

    assert wiped.returncode == 0, wiped.stderr
    after = list_tree(setup.upload, setup.upload_bucket)
    assert set(before) - set(after) == set(shown)  # the dry run's list, no more, no less
    assert all(after[key] == b"stale" for key in OUTSIDE)
    assert check_target_model(setup, "0", 2)[0] == "complete"


PREFIX, METRICS, MODEL = "DR_UPLOAD_S3_PREFIX=", "DR_LOCAL_S3_METRICS_PREFIX=", "DR_LOCAL_S3_MODEL_PREFIX="


@pytest.mark.parametrize(
    ("changes", "flags", "fragment"),
    [
        ([("0", PREFIX + "alpha-up", PREFIX)], (), "No upload prefix defined"),
        ([("0", PREFIX + "alpha-up", PREFIX + "/")], (), "DR_UPLOAD_S3_PREFIX=/ for run 0 ("),
        ([("0", PREFIX + "alpha-up", PREFIX + "//")], (), "would upload into the root of bucket '{upload}'"),
        ([], ("-p", "/"), "-p needs a non-empty prefix"),
        (
            [("1", PREFIX + "beta-up", PREFIX + "alpha-up/beta")],
            (),
            "run 0 (alpha): refusing -w: run 1 (beta) uploads to s3://{upload}/alpha-up/beta/, inside the target "
            "s3://{upload}/alpha-up/, and -w would delete it",
        ),
        (
            [("0", METRICS + "$DR_LOCAL_S3_MODEL_PREFIX/metrics", METRICS + "alpha-up/metrics")],
            ("-L",),
            "run 0 (alpha): refusing -w: run 0 (alpha) keeps its metrics in s3://{local}/alpha-up/metrics/, inside "
            "the target s3://{local}/alpha-up/",
        ),
        (
            [("1", MODEL + "beta", MODEL + "models/beta"), ("0", PREFIX + "alpha-up", PREFIX + "models")],
            ("-L",),
            "run 0 (alpha): refusing -w: run 1 (models/beta) trains in s3://{local}/models/beta/, inside the target "
            "s3://{local}/models/",
        ),
    ],
    ids=["empty", "slash", "slashes", "p-slash", "holds-another-target", "holds-metrics", "holds-training"],
)
def test_a_wipe_that_could_reach_beyond_the_run_is_refused(
    setup: Setup, changes: list[tuple[str, str, str]], flags: tuple[str, ...], fragment: str
) -> None:
    for run_id, old, new in changes:
        run_file = setup.files.run_files[int(run_id)]
        assert old + "\n" in run_file.read_text()
        run_file.write_text(run_file.read_text().replace(old + "\n", new + "\n"))
    local_before = list_tree(setup.local, setup.local_bucket)

    done = setup.command("upload", *setup.upload_args("0", "1"), "-w", "-f", *flags, "--processes", "0")

    assert done.returncode == 2, done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.strip()]
    expected = fragment.format(upload=setup.upload_bucket, local=setup.local_bucket)
    assert line.startswith("drtransfer: error: ") and expected in line, line
    single_sentence(line)
    assert list_tree(setup.upload, setup.upload_bucket) == {}
    assert list_tree(setup.local, setup.local_bucket) == local_before


@pytest.mark.parametrize("root", ["", "/"], ids=["empty", "slash"])
def test_the_engine_never_deletes_across_a_whole_bucket(
    upload_s3: SeaweedServer, upload_bucket: str, root: str
) -> None:
    client = upload_s3.client()
    for key in ("model/x", "other/y"):
        client.put_object(Bucket=upload_bucket, Key=key, Body=b"keep")
    plan = ModelPlan("m", ObjectLocation("upload", upload_bucket, root))
    plan.add(DeleteObject(ObjectLocation("upload", upload_bucket, "model/x")))
    plan.add(DeleteObject(ObjectLocation("upload", upload_bucket, "other/y")))

    [result] = run_transfer([plan], {"upload": upload_s3.endpoint("upload")}, EngineSettings(processes=0))

    assert result.status == "failed"
    assert [r.status for r in result.operations] == ["failed", "failed"]
    whole = f"the model's target is the whole bucket s3://{upload_bucket}/."
    assert result.error == f"Refusing to delete s3://{upload_bucket}/model/x: {whole}"
    assert set(list_tree(upload_s3, upload_bucket)) == {"model/x", "other/y"}
