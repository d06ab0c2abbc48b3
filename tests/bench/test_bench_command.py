"""``drtransfer bench`` measures each setting with the real engine, reports a table or
JSON, and deletes only its own scratch objects afterwards, also when interrupted."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.bench.conftest import BenchSetup
from tests.infra.drfc import run_cli

TINY = ("--models", "2", "--scale", "0.002")  # checkpoint files of a few KiB: behaviour, not speed


def test_json_reports_every_setting_and_cleans_up(bench_setup: BenchSetup, tmp_path: Path) -> None:
    plot = tmp_path / "bench.png"
    done = bench_setup.bench(*TINY, "--processes", "0,1", "--concurrency", "4", "--json", "-f", "--plot", str(plot))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)

    assert report["models"] == 2 and report["network"] == "shallow"
    assert report["same_endpoint"] is False
    assert report["scratch_prefix"].startswith("drtransfer-bench/")
    settings = [(r["setting"]["processes"], r["setting"]["concurrency"]) for r in report["results"]]
    assert settings == [(0, 4), (1, 4)]
    for result in report["results"]:
        assert result["status"] == "ok"
        # Every model's checkpoint, metadata and metrics went over (plus the files the plan writes).
        assert result["objects"] >= report["model_objects"]
        assert result["bytes"] >= report["model_bytes"] * 0.95
        assert result["seconds"] > 0 and result["cpu_seconds"] > 0 and result["peak_rss_mib"] > 0
        assert result["mib_per_s"] == pytest.approx(result["bytes"] / 2**20 / result["seconds"], rel=0.05)
    assert report["scratch_objects_deleted"] >= report["model_objects"]
    assert plot.read_bytes().startswith(b"\x89PNG")
    # stdout stays one JSON document; the best setting (highest MiB/s, one run each) is named on stderr.
    fastest = max(report["results"], key=lambda r: r["mib_per_s"])["setting"]
    best = [line for line in done.stderr.splitlines() if line.startswith("best: ")]
    assert best == [f"best: processes={fastest['processes']} concurrency=4 part-size=8MiB: "
                    f"{max(r['mib_per_s'] for r in report['results']):.1f} MiB/s (1 run)"]
    # Only the bench's own objects were deleted: both buckets are exactly as before.
    assert bench_setup.contents() == bench_setup.before


def test_table_shows_medians_when_repeated(bench_setup: BenchSetup) -> None:
    done = bench_setup.bench(*TINY, "--processes", "1", "--repeat", "2", "-f")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].split()[:2] == ["setting", "run"]
    assert [line.split("  ")[0].strip() for line in lines[2:-1]] == ["1 proc × 10 conc, 8 MiB parts"] * 3
    assert "median" in lines[-2]
    median_mib_per_s = lines[-2].split()[-5]
    assert lines[-1] == f"best: processes=1 concurrency=10 part-size=8MiB: {median_mib_per_s} MiB/s (median of 2 runs)"
    assert bench_setup.contents() == bench_setup.before


def test_refuses_without_terminal_or_force_and_writes_nothing(bench_setup: BenchSetup) -> None:
    done = bench_setup.bench(*TINY)
    assert done.returncode == 2
    assert "pass -f" in done.stderr
    assert bench_setup.contents() == bench_setup.before


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupt_deletes_only_the_scratch_objects(bench_setup: BenchSetup, how: str) -> None:
    # Many uploads of small models: the bench is busy for far longer than it takes to interrupt it.
    proc = bench_setup.start_bench("--models", "2", "--scale", "0.01", "--repeat", "100", "--processes", "1", "-f")
    upload = bench_setup.upload.client()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            listed = upload.list_objects_v2(Bucket=bench_setup.upload_bucket, Prefix="drtransfer-bench/2")
            if any("/case-" in item["Key"] for item in listed.get("Contents", [])):
                break  # an upload is under way
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends: the whole process group
        else:
            os.kill(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert proc.returncode == 130, stderr
    assert "scratch objects were deleted" in stderr
    assert bench_setup.contents() == bench_setup.before
    assert bench_setup.multipart_uploads() == []


def test_demo_runs_from_a_fresh_install() -> None:
    done = run_cli("bench", "--demo", *TINY, "--processes", "1", stdin=None)
    assert done.returncode == 0, done.stderr
    assert "cross-endpoint" in done.stdout
    header, row = done.stdout.splitlines()[1:3]
    assert header.split()[:3] == ["setting", "run", "seconds"]
    assert row.startswith("1 proc × 10 conc, 8 MiB parts")
    assert "Deleting the bench's scratch objects" in done.stderr
