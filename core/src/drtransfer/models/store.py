"""What the model-management jobs share: listings, small reads and the backup manifest.

A listing is one paginated ListObjectsV2 of a prefix (never a HEAD per object); objects are compared by
size and ETag. ETags of different shapes (a plain MD5 and a multipart ``md5-N``) are not comparable:
the same bytes uploaded in parts have another ETag, so such a pair is compared by size alone.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from drtransfer import __version__
from drtransfer.checkpoints import Checkpoint, group_checkpoints
from drtransfer.endpoints import Endpoint, list_pages
from drtransfer.engine import EngineSettings
from drtransfer.errors import ConfigError
from drtransfer.operations import ObjectLocation, SourceObject
from drtransfer.s3errors import answer_timeout, describe_client_error, is_not_found

MANIFEST = "drtransfer-backup.json"
MANIFEST_FORMAT = 1
_SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN", "ACCESS_KEY")


@dataclass(frozen=True, kw_only=True)
class JobSettings:
    """What every model-management request takes besides its own fields: the engine's settings, and the
    environment the backup profile's credentials are looked up in (None: ``os.environ``)."""

    engine: EngineSettings = field(default_factory=EngineSettings)
    environ: Mapping[str, str] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Listed:
    """One listed object; ``key`` is relative to the listed prefix."""

    key: str
    size: int
    etag: str
    modified: dt.datetime | None = None


def list_prefix(client: Any, endpoint: Endpoint, bucket: str, prefix: str) -> dict[str, Listed]:
    """Every object under ``prefix/`` (a trailing slash is added: never a sibling prefix), keyed relative
    to it."""
    root = prefix.strip("/") + "/" if prefix.strip("/") else ""
    found: dict[str, Listed] = {}
    try:
        for page in list_pages(client.list_objects_v2, Bucket=bucket, Prefix=root):
            for item in page.get("Contents", []):
                relative = item["Key"][len(root) :]
                found[relative] = Listed(relative, int(item["Size"]), item["ETag"].strip('"'), item.get("LastModified"))
    except Exception as error:
        raise describe_client_error(
            error, endpoint=endpoint, bucket=bucket, action="list objects", answer_within=answer_timeout(client)
        ) from None
    return found


def read_object(client: Any, endpoint: Endpoint, bucket: str, key: str) -> bytes | None:
    """The bytes of a small object, None when it does not exist."""
    try:
        body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as error:
        if is_not_found(error):
            return None
        raise describe_client_error(
            error, endpoint=endpoint, bucket=bucket, action="read objects", answer_within=answer_timeout(client)
        ) from None
    return body


def check_bucket(client: Any, endpoint: Endpoint, bucket: str, variable: str) -> None:
    """One sentence when ``bucket`` is missing or unreachable (``variable`` names the setting to fix)."""
    try:
        client.head_bucket(Bucket=bucket)
    except Exception as error:
        if is_not_found(error):
            raise ConfigError(
                f"The bucket {bucket!r} does not exist on the {endpoint.describe()}; create it or fix {variable}."
            ) from None
        raise describe_client_error(
            error, endpoint=endpoint, bucket=bucket, action="list objects", answer_within=answer_timeout(client)
        ) from None


def comparable(a: str, b: str) -> bool:
    return bool(a) and bool(b) and ("-" in a) == ("-" in b)


def same_object(a_size: int, a_etag: str, b_size: int, b_etag: str) -> bool:
    """Same size, and the same ETag where the two ETags are comparable."""
    return a_size == b_size and (a_etag == b_etag or not comparable(a_etag, b_etag))


def source_object(endpoint: Endpoint, bucket: str, prefix: str, listed: Listed) -> SourceObject:
    key = f"{prefix.strip('/')}/{listed.key}" if prefix.strip("/") else listed.key
    return SourceObject(ObjectLocation(endpoint.name, bucket, key), listed.size, listed.etag)


def model_checkpoints(keys: dict[str, Listed]) -> dict[int, Checkpoint]:
    """The checkpoints among relative keys (``model/<N>_Step-...``), by number."""
    model = {k[len("model/") :]: v for k, v in keys.items() if k.startswith("model/") and "/" not in k[6:]}
    dummy = ObjectLocation("", "", "")
    return group_checkpoints({name: SourceObject(dummy, obj.size, obj.etag) for name, obj in model.items()})


def public_variables(values: dict[str, str]) -> dict[str, str]:
    """The run's variables without anything that looks like a secret."""
    return {k: v for k, v in sorted(values.items()) if not any(word in k.upper() for word in _SECRET_WORDS)}


@dataclass(frozen=True)
class ManifestObject:
    size: int
    etag: str  # the source object's ETag (its checksum as the training store keeps it)


@dataclass
class Manifest:
    """``drtransfer-backup.json``: written last, so a backup without it is never taken for a whole one."""

    source: str
    created: str
    version: str
    variables: dict[str, str] = field(default_factory=dict)
    objects: dict[str, ManifestObject] = field(default_factory=dict)  # relative key -> size, checksum
    checkpoint: int | None = None  # the highest complete checkpoint it holds

    def to_bytes(self) -> bytes:
        data = {
            "format": MANIFEST_FORMAT,
            "tool": "drtransfer",
            "version": self.version,
            "created": self.created,
            "source": self.source,
            "checkpoint": self.checkpoint,
            "variables": self.variables,
            "objects": {k: {"size": o.size, "etag": o.etag} for k, o in sorted(self.objects.items())},
        }
        return json.dumps(data, indent=1).encode()

    @classmethod
    def new(cls, source: str, variables: dict[str, str], objects: dict[str, ManifestObject]) -> Manifest:
        listed = {k: Listed(k, o.size, o.etag) for k, o in objects.items()}
        complete = [n for n, c in model_checkpoints(listed).items() if c.complete]
        now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        return cls(source, now, __version__, public_variables(variables), objects, max(complete, default=None))

    @classmethod
    def parse(cls, raw: bytes, url: str) -> Manifest:
        try:
            data = json.loads(raw)
            objects = {str(k): ManifestObject(int(v["size"]), str(v["etag"])) for k, v in dict(data["objects"]).items()}
            checkpoint = data.get("checkpoint")
            return cls(
                source=str(data["source"]),
                created=str(data["created"]),
                version=str(data.get("version", "")),
                variables={str(k): str(v) for k, v in dict(data.get("variables", {})).items()},
                objects=objects,
                checkpoint=int(checkpoint) if checkpoint is not None else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError(
                f"{url} is not a drtransfer backup manifest (unreadable JSON or fields); back the model up again."
            ) from None

    def mismatches(self, listing: dict[str, Listed]) -> list[str]:
        """The manifest's objects that ``listing`` lacks or holds with other bytes."""
        wrong = []
        for key, entry in sorted(self.objects.items()):
            found = listing.get(key)
            if found is None or not same_object(found.size, found.etag, entry.size, entry.etag):
                wrong.append(key)
        return wrong
