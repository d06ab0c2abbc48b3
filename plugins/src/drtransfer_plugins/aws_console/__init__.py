"""``aws-console``: import uploaded models into the (legacy) AWS DeepRacer console.

Configure ``DR_UPLOAD_S3_ROLE`` (an IAM role the DeepRacer service can use to read the upload bucket)
and upload to an AWS bucket in us-east-1; ``docs/import.md`` has the details.
"""

from __future__ import annotations

from typing import Any

from drtransfer import hookimpl
from drtransfer.registry import Registry
from drtransfer_plugins.aws_console.importer import TARGET, ConsoleImporter


@hookimpl
def drtransfer_register_importers(register: Registry[Any]) -> None:
    register(TARGET, ConsoleImporter(), "AWS DeepRacer console (legacy): ImportModel of the uploaded s3://bucket/prefix")
