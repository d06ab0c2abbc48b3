"""The car package from S3: stream the chosen checkpoint's ``model_N.pb`` and the model metadata.

The model is inspected with :func:`drtransfer.inventory.inspect_model` (the same listing and checks as
an upload, so every checkpoint selector sees the inventory it expects, but without the reward function,
which a car package does not hold), the checkpoint is chosen
through the plugin host, the car's rules are checked on the metadata, and only then is the ``.pb``
GET body read in chunks straight into the archive.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from drtransfer.endpoints import make_s3_client
from drtransfer.engine.checksums import is_plain_md5
from drtransfer.errors import ModelError
from drtransfer.inventory import inspect_model
from drtransfer.operations import SourceObject
from drtransfer.packaging import (
    MemberSource,
    OpenedMember,
    Package,
    PackageRequest,
    build_targz,
    resolve_archive_name,
)
from drtransfer.s3errors import describe_client_error, is_not_found
from drtransfer_plugins.carzip.rules import (
    CAR_FORMAT,
    CAR_METADATA_MEMBER,
    CAR_MODEL_MEMBER,
    CAR_SUFFIX,
    check_car_package,
)

if TYPE_CHECKING:
    from drtransfer.plugins import PluginHost
    from drtransfer.runconfig import RunConfig



def build_from_s3(run: RunConfig, request: PackageRequest, host: PluginHost) -> Package:
    client = make_s3_client(run.local)
    inventory = inspect_model(run, client, reward_function=False)
    selection = host.select_checkpoint(request.checkpoint or "last", inventory, run)
    pb = selection.checkpoint.files["pb"]
    # The metadata as the inspection read and parsed it: the bytes checked against the car's rules are
    # the bytes packaged.
    metadata_url = inventory.url("model/model_metadata.json")
    metadata_bytes, metadata = inventory.metadata_body, inventory.metadata
    name, note = resolve_archive_name(run, request.name)
    members = [
        MemberSource(CAR_MODEL_MEMBER, pb.location.url, _s3_opener(client, run, pb)),
        MemberSource.from_bytes(CAR_METADATA_MEMBER, metadata_bytes, metadata_url),
    ]
    check_car_package(name, [m.arcname for m in members], metadata, run.label)
    data, written = build_targz(members)
    return Package(
        run=run,
        format=CAR_FORMAT,
        name=name,
        suffix=CAR_SUFFIX,
        data=data,
        members=written,
        origin=pb.location.url,
        explanation=selection.explanation,
        checkpoint=selection.checkpoint.name,
        notes=(note,) if note else (),
    )


def _s3_opener(client: Any, run: RunConfig, obj: SourceObject) -> Any:
    @contextlib.contextmanager
    def opener() -> Iterator[OpenedMember]:
        bucket, key = obj.location.bucket, obj.location.key
        try:
            response = client.get_object(Bucket=bucket, Key=key)
        except Exception as error:
            if is_not_found(error):
                raise ModelError(
                    f"{obj.location.url} was deleted while packaging (training rotates old checkpoints); "
                    f"choose another checkpoint."
                ) from None
            raise describe_client_error(error, endpoint=run.local, bucket=bucket, action="read") from None
        body = response["Body"]
        etag = str(response.get("ETag", "")).strip('"')
        try:
            yield OpenedMember(body, int(response["ContentLength"]), etag if is_plain_md5(etag) else None)
        finally:
            body.close()

    return opener
