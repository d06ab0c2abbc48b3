"""``EngineSettings.bandwidth_limit`` (``--bandwidth-limit``): a limited run writes its bytes no faster than
the limit on every data path, exactly; an unlimited run builds no limiter at all."""

from __future__ import annotations

import time

import pytest

from drtransfer.engine import EngineSettings, MiB, run_transfer
from drtransfer.engine import throttle as throttle_module
from drtransfer.engine.buffers import READ_CHUNK
from drtransfer.engine.runtime import Runtime
from drtransfer.errors import ConfigError
from drtransfer.locals3 import SeaweedServer
from drtransfer.operations import ObjectLocation, PutBytes
from tests.engine import engine_helpers as helpers

LIMIT = 4 * MiB  # bytes per second for the whole run


def test_a_limited_run_takes_at_least_its_bytes_over_the_limit(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    workers: tuple[int, str | None],
) -> None:  # fmt: skip
    processes, start_method = workers
    client = local_s3.client()
    data = {"small.bin": helpers.random_bytes(2 * MiB), "mp.bin": helpers.random_bytes(12 * MiB)}
    helpers.put_single(client, local_bucket, "small.bin", data["small.bin"])  # one GET into one PUT
    helpers.put_multipart(client, local_bucket, "mp.bin", data["mp.bin"])  # one GET spliced into UploadParts
    generated = helpers.random_bytes(1 * MiB)  # a PutBytes (car-zip's archive, rewritten index files)
    put = PutBytes(ObjectLocation("dst", upload_bucket, "t/generated.bin"), generated)
    endpoints = {"src": local_s3.endpoint("src"), "dst": upload_s3.endpoint("dst")}
    plan = helpers.copy_plan("m", local_s3, "src", local_bucket, sorted(data), "dst", upload_bucket, "t/", [put])
    total = sum(map(len, data.values())) + len(generated)

    started = time.monotonic()
    [result] = run_transfer([plan], endpoints, helpers.base_settings(processes, start_method, bandwidth_limit=LIMIT))
    elapsed = time.monotonic() - started

    assert result.status == "ok", result.error
    assert result.bytes == total
    helpers.assert_copied(upload_s3, upload_bucket, "t/", data)
    assert helpers.target_bytes(upload_s3, upload_bucket, "t/generated.bin") == generated
    # A lower bound, not a speed goal: no machine moves 15 MiB at 4 MiB/s in less than ~3.75 s. Each
    # process's bucket lets its first chunk (at most 256 KiB) through at once, hence the slack.
    slack = max(1, processes) * throttle_module.MAX_CHUNK
    assert elapsed >= (total - slack) / LIMIT, (elapsed, total / LIMIT)


def test_an_unlimited_run_builds_no_limiter(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    def refused(*args: object) -> None:
        raise AssertionError("a limiter was built for an unlimited run")

    monkeypatch.setattr(throttle_module, "Throttle", refused)
    data = {"small.bin": helpers.random_bytes(300_000), "mp.bin": helpers.random_bytes(12 * MiB)}
    helpers.put_single(local_s3.client(), local_bucket, "small.bin", data["small.bin"])
    helpers.put_multipart(local_s3.client(), local_bucket, "mp.bin", data["mp.bin"])
    endpoints = {"src": local_s3.endpoint("src"), "dst": upload_s3.endpoint("dst")}
    for path in ("lean", "botocore"):
        plan = helpers.copy_plan("m", local_s3, "src", local_bucket, sorted(data), "dst", upload_bucket, f"{path}/")
        [result] = run_transfer([plan], endpoints, helpers.base_settings(0, data_path=path))
        assert result.status == "ok", result.error
        helpers.assert_copied(upload_s3, upload_bucket, f"{path}/", data)
    runtime = Runtime(endpoints, EngineSettings(processes=0), lambda report: None, _NeverCancelled())
    assert runtime.throttle is None and runtime.read_step == READ_CHUNK  # reads keep their full size


class _NeverCancelled:
    def is_set(self) -> bool:
        return False


def test_the_limit_is_split_across_worker_processes() -> None:
    assert EngineSettings(processes=4, bandwidth_limit=20 * MiB).process_bandwidth == 5 * MiB
    assert EngineSettings(processes=0, bandwidth_limit=20 * MiB).process_bandwidth == 20 * MiB
    assert EngineSettings(processes=4).process_bandwidth is None


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_that_is_not_positive_is_refused(limit: int) -> None:
    with pytest.raises(ConfigError, match="the bandwidth limit must be more than 0 bytes per second"):
        EngineSettings(bandwidth_limit=limit)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("20MB/s", 20 * MiB),
        ("20MB", 20 * MiB),
        ("500KB/s", 500 * 1024),
        ("1.5MiB/s", 3 * MiB // 2),
        ("1048576", MiB),
        ("2gb/s", 2 * 1024 * MiB),
        ("64K", 64 * 1024),
        ("800 B/s", 800),
    ],
)
def test_rates_read_as_awscli_reads_max_bandwidth(text: str, rate: int) -> None:
    assert throttle_module.parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "0", "0MB/s", "-5MB/s", "MB/s", "20XB/s", ""])
def test_a_bad_rate_is_one_sentence(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a rate|must be more than 0"):
        throttle_module.parse_rate(text)


def test_chunks_stay_small_enough_for_every_thread_to_send_often() -> None:
    fast = throttle_module.Throttle(100 * MiB, 10, lambda seconds: None)
    slow = throttle_module.Throttle(100 * 1024, 10, lambda seconds: None)
    assert fast.chunk == throttle_module.MAX_CHUNK
    assert slow.chunk == throttle_module.MIN_CHUNK
