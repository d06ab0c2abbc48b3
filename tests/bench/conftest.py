"""``drtransfer bench`` against the session SeaweedFS servers, through DRfC configuration files.

Each test's buckets already hold objects that are not the bench's (a DRfC model, another bench run's
prefix, a look-alike prefix), so a test can check that the bench deleted only what it wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drtransfer.locals3 import SeaweedServer
from drtransfer.samples import DrfcFiles, seed_model
from tests.conftest import drfc_config_for
from tests.infra.interrupts import with_default_sigint

# Objects that belong to someone else, in both buckets: the bench must leave every one of them alone.
FOREIGN = {
    "drtransfer-bench/20240101T000000Z-0000beef/src/model-00/reward_function.py": b"another bench run",
    "drtransfer-bench-notes/readme.txt": b"a look-alike prefix",
    "drtransfer-bench.txt": b"a look-alike key",
    "custom_files/reward_function.py": b"def reward_function(params):\n    return 1.0\n",
}


@dataclass
class BenchSetup:
    local: SeaweedServer
    upload: SeaweedServer
    local_bucket: str
    upload_bucket: str
    files: DrfcFiles
    before: dict[str, dict[str, bytes]]  # bucket -> key -> bytes, as the test found them

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DR_", "AWS_", "DRTRANSFER_"))}
        env.update(self.files.environ)
        return env

    def command(self, *args: str) -> list[str]:
        exe = str(Path(sys.executable).parent / "drtransfer")
        return [exe, "bench", str(self.files.run_files[0]), "--system-env", str(self.files.system_env), *args]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args), capture_output=True, text=True, env=self.env(), timeout=240, stdin=subprocess.DEVNULL
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """The bench in a session of its own, with SIGINT at its default: a test interrupts it."""
        return subprocess.Popen(
            with_default_sigint(self.command(*args)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def contents(self) -> dict[str, dict[str, bytes]]:
        return {
            self.local_bucket: tree(self.local, self.local_bucket),
            self.upload_bucket: tree(self.upload, self.upload_bucket),
        }

    def multipart_uploads(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for server, bucket in ((self.local, self.local_bucket), (self.upload, self.upload_bucket)):
            out += server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return out


def tree(server: SeaweedServer, bucket: str) -> dict[str, bytes]:
    client = server.client()
    out: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            out[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return out


@pytest.fixture
def bench_setup(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> BenchSetup:
    seed_model(local_s3.client(), local_bucket, "rl-deepracer-sagemaker", checkpoints=(1,), scale=0.001)
    for server, bucket in ((local_s3, local_bucket), (upload_s3, upload_bucket)):
        for key, body in FOREIGN.items():
            server.client().put_object(Bucket=bucket, Key=key, Body=body)
    files = drfc_config_for(
        tmp_path / "drfc",
        local_s3,
        local_bucket,
        upload_s3,
        upload_bucket,
        [("0", "rl-deepracer-sagemaker", "rl-deepracer-sagemaker-up")],
    )
    setup = BenchSetup(local_s3, upload_s3, local_bucket, upload_bucket, files, {})
    setup.before = setup.contents()
    return setup
