"""SeaweedFS killed with SIGKILL in the middle of a three-run upload, on the source side and on
the target side, then restarted on the same ports and data.

The command must fail with one clear sentence per affected model and exit 1, leave no multipart upload
on either server, never give a target model its commit objects unless all its objects are there and
verified, and a re-run must complete, skipping what was already verified.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from drtransfer.locals3 import SeaweedServer
from tests.conftest import list_multipart_uploads, list_tree
from tests.infra.drfc import json_lines
from tests.infra.faultproxy import FaultProxy
from tests.reliability.conftest import (
    FAIL_FAST,
    Running,
    Setup,
    check_target_model,
    make_setup,
    no_uploads_left,
    single_sentence,
)

# run 0 is small and finishes early; runs 1 and 2 have 18 MiB of checkpoint data (a multipart stream)
# and an 8.8 MiB graph each, moving while the server is killed
SCALE = {"0": 0.05, "1": 0.4, "2": 0.4}
CHECKPOINT = 1
UPLOAD = ("--processes", "1", "--concurrency", "3", "-f", "-v", "--no-progress")


def transfer_under_way(setup: Setup) -> Callable[[], bool]:
    """True once the target holds a few finished objects and a multipart upload with a part in."""
    client = setup.upload.client()

    def check() -> bool:
        if client.list_objects_v2(Bucket=setup.upload_bucket).get("KeyCount", 0) < 3:
            return False
        for upload in list_multipart_uploads(setup.upload, setup.upload_bucket):
            parts = client.list_parts(Bucket=setup.upload_bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            if parts.get("Parts"):
                return True
        return False

    return check


def failed_models(setup: Setup, running: Running) -> dict[str, str]:
    """run label -> the one FAILED sentence the command printed for it."""
    found: dict[str, str] = {}
    for line in running.stderr_lines():
        label, sep, sentence = line.partition(": FAILED: ")
        if sep:
            assert label not in found, f"two failure lines for {label}:\n{running.stderr}"
            found[label] = sentence
    return found


def check_after_failure(setup: Setup, running: Running, code: int, endpoint: str) -> dict[str, set[str]]:
    """The common assertions once the killed server is back; returns each run's objects on the target."""
    assert code == 1, running.stderr
    failed = failed_models(setup, running)
    assert failed, running.stderr
    for sentence in failed.values():
        single_sentence(sentence)
        assert f"{endpoint} endpoint http://127.0.0.1:" in sentence, sentence
    assert set(failed) <= {f"run {run_id} ({prefix})" for run_id, prefix in setup.runs}, failed
    present: dict[str, set[str]] = {}
    for run_id, prefix in setup.runs:
        label = f"run {run_id} ({prefix})"
        state, keys = check_target_model(setup, run_id, CHECKPOINT)
        present[run_id] = keys
        if label in failed:
            assert state != "complete", f"{label} was reported failed but holds its commit objects"
        else:  # it finished before (or despite) the kill
            assert state == "complete", f"{label} is neither reported failed nor complete"
    no_uploads_left(setup.upload, setup.upload_bucket)
    no_uploads_left(setup.local, setup.local_bucket)
    return present


def rerun_completes(setup: Setup, present: dict[str, set[str]]) -> None:
    again = setup.command("upload", *setup.upload_args(), "-f", "--json", "--processes", "1")
    assert again.returncode == 0, again.stderr
    lines = {line["run_id"]: line for line in json_lines(again.stdout)}
    for run_id, _prefix in setup.runs:
        assert lines[run_id]["status"] == "ok"
        # everything verified before the kill is skipped, nothing else is
        assert lines[run_id]["skipped"] == len(present[run_id]), (run_id, lines[run_id], sorted(present[run_id]))
        state, _ = check_target_model(setup, run_id, CHECKPOINT)
        assert state == "complete"
    no_uploads_left(setup.upload, setup.upload_bucket)


def test_source_killed_mid_upload_then_rerun(
    tmp_path: Path, own_server: Callable[[str], SeaweedServer], proxy_for: Callable[[SeaweedServer], FaultProxy],
    upload_s3: SeaweedServer, upload_bucket: str,
) -> None:  # fmt: skip
    source = own_server("source")
    source.create_bucket("bucket")
    proxy = proxy_for(source)
    proxy.bandwidth = 3 * 1024 * 1024  # per connection: slow enough that the kill lands mid-transfer
    setup = make_setup(
        tmp_path, source, upload_s3, "bucket", upload_bucket, local_url=proxy.url, scale=SCALE,
        checkpoints=(CHECKPOINT,),
    )  # fmt: skip

    running = setup.start("upload", *setup.upload_args(), *UPLOAD, DRTRANSFER_ENGINE=FAIL_FAST)
    try:
        running.wait_for(transfer_under_way(setup), "the transfer to be under way")
        source.kill()
        code = running.finish()
    finally:
        running.stop()
        if source.process is None or source.process.poll() is not None:
            source.start()  # back on the same ports and data
    proxy.bandwidth = 0

    present = check_after_failure(setup, running, code, "local")
    assert any(present.values()), "nothing had been verified before the kill"
    rerun_completes(setup, present)


def test_target_killed_mid_upload_then_rerun(
    tmp_path: Path, own_server: Callable[[str], SeaweedServer], proxy_for: Callable[[SeaweedServer], FaultProxy],
    local_s3: SeaweedServer, local_bucket: str,
) -> None:  # fmt: skip
    target = own_server("target")
    target.create_bucket("bucket")
    proxy = proxy_for(local_s3)
    proxy.bandwidth = 3 * 1024 * 1024
    setup = make_setup(
        tmp_path, local_s3, target, local_bucket, "bucket", local_url=proxy.url, scale=SCALE,
        checkpoints=(CHECKPOINT,),
    )  # fmt: skip

    running = setup.start("upload", *setup.upload_args(), *UPLOAD, DRTRANSFER_ENGINE=FAIL_FAST)
    try:
        running.wait_for(transfer_under_way(setup), "the transfer to be under way")
        target.kill()
        # Once an operation has failed for good, bring the server back while the command still tries to
        # abort its multipart uploads (abort_timeout).
        running.wait_for(lambda: any(" failed: " in line for line in running.stderr_lines()), "a failure")
        target.start()
        code = running.finish()
    finally:
        running.stop()
        if target.process is None or target.process.poll() is not None:
            target.start()
    proxy.bandwidth = 0

    present = check_after_failure(setup, running, code, "upload")
    # the models it hit failed once the stall deadline (3 s without progress) had passed, the waits before
    # were reported by -v with their reason
    failed = failed_models(setup, running).values()
    assert any(s.startswith("No progress for 3 s: upload endpoint http://127.0.0.1:") for s in failed), failed
    waits = [line for line in running.stderr_lines() if ": retry " in line]
    assert any(line.endswith((": connection refused", ": connection lost")) for line in waits), running.stderr
    rerun_completes(setup, present)
    assert list_tree(target, "bucket", "alpha-up/")
