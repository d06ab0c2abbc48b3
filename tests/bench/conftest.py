"""``drtransfer bench`` against the session SeaweedFS servers, through DRfC configuration files.

Each test's buckets already hold objects that are not the bench's (a DRfC model, another bench run's
prefix, a look-alike prefix), so a test can check that the bench deleted only what it wrote.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from drtransfer.locals3 import SeaweedServer
from tests.conftest import list_multipart_uploads, list_tree
from tests.infra.drfc import DrfcSetup, seed_drfc

# Objects that belong to someone else, in both buckets: the bench must leave every one of them alone.
FOREIGN = {
    "drtransfer-bench/20240101T000000Z-0000beef/src/model-00/reward_function.py": b"another bench run",
    "drtransfer-bench-notes/readme.txt": b"a look-alike prefix",
    "drtransfer-bench.txt": b"a look-alike key",
    "custom_files/reward_function.py": b"def reward_function(params):\n    return 1.0\n",
}


@dataclass
class BenchSetup(DrfcSetup):
    """The setup of one run (a small DRfC model) whose buckets also hold ``FOREIGN``."""

    before: dict[str, dict[str, bytes]] = field(default_factory=dict)  # bucket -> key -> bytes, as the test found them

    def bench(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``drtransfer bench`` of the run, with ``/dev/null`` as its input."""
        return self.run("bench", *self.upload_args(), *args, stdin=None)

    def start_bench(self, *args: str) -> subprocess.Popen[str]:
        """``drtransfer bench`` in the background, in a session of its own (to interrupt it as a terminal would)."""
        return self.popen("bench", *self.upload_args(), *args, new_session=True)

    def contents(self) -> dict[str, dict[str, bytes]]:
        return {
            self.local_bucket: list_tree(self.local, self.local_bucket),
            self.upload_bucket: list_tree(self.upload, self.upload_bucket),
        }

    def multipart_uploads(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for server, bucket in ((self.local, self.local_bucket), (self.upload, self.upload_bucket)):
            out += list_multipart_uploads(server, bucket)
        return out


@pytest.fixture
def bench_setup(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> BenchSetup:
    setup = seed_drfc(
        tmp_path / "drfc", local_s3, upload_s3, local_bucket, upload_bucket, [("0", "rl-deepracer-sagemaker")],
        checkpoints=(1,), scale=0.001, kind=BenchSetup,
    )  # fmt: skip
    for server, bucket in ((local_s3, local_bucket), (upload_s3, upload_bucket)):
        for key, body in FOREIGN.items():
            server.client().put_object(Bucket=bucket, Key=key, Body=body)
    setup.before = setup.contents()
    return setup
