"""Issue 3's reference: one tuned s3transfer ``TransferManager`` in one process, streaming every source
object (a GET body, opened only when s3transfer first reads it) into an upload to the other endpoint.

Settings from s3-lab §2 (best on this kind of machine): 10 threads, 8 MiB threshold and parts, a
connection pool of 20, path-style SigV4, no optional checksums (as deepracer-transfer's clients).

usage: tm_ceiling.py MANIFEST.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from s3transfer.manager import TransferConfig, TransferManager

MiB = 1024 * 1024


def client(server: dict[str, str]) -> Any:
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"}, max_pool_connections=20,
                    response_checksum_validation="when_required", request_checksum_calculation="when_required")
    return boto3.session.Session().client(
        "s3", endpoint_url=server["url"], region_name="us-east-1", aws_access_key_id=server["access_key"],
        aws_secret_access_key=server["secret_key"], config=config,
    )


class LazyBody:
    """A non-seekable file object over a GET body; the GET happens at the first read."""

    def __init__(self, source: Any, bucket: str, key: str) -> None:
        self.source, self.bucket, self.key = source, bucket, key
        self.body: Any = None

    def read(self, amount: int | None = -1) -> bytes:
        if self.body is None:
            self.body = self.source.get_object(Bucket=self.bucket, Key=self.key)["Body"]
        data: bytes = self.body.read(None if amount is None or amount < 0 else amount)
        return data


def main(manifest_path: str) -> int:
    manifest = json.loads(Path(manifest_path).read_text())
    src, dst = client(manifest["source"]), client(manifest["target"])
    sbucket, tbucket = manifest["source"]["bucket"], manifest["target"]["bucket"]
    config = TransferConfig(max_request_concurrency=10, multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB)
    with TransferManager(dst, config) as manager:
        futures = []
        for model in manifest["models"]:
            prefix = model["src"].rstrip("/") + "/"
            for page in src.get_paginator("list_objects_v2").paginate(Bucket=sbucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    key = model["dst"].rstrip("/") + "/" + item["Key"][len(prefix):]
                    futures.append(manager.upload(LazyBody(src, sbucket, item["Key"]), tbucket, key))
        for future in futures:
            future.result()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
