"""The model catalog behind ``drtransfer models``: every model in the local buckets of the given runs,
in the backup locations they name, and at their upload prefixes.

Fast on buckets with hundreds of prefixes: one delimited listing of a bucket (or backup base) finds the
top-level prefixes, each is then listed in parallel (one paginated listing each), and only the small
index files are read: ``model/deepracer_checkpoints.json`` of each local model (best and last with
their metrics) and the manifest of each backup. No object is HEADed. A model is a prefix with objects
under ``model/``; its root is the part of a key before ``/model/``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from drtransfer.checkpoints import CheckpointIndex, parse_checkpoint_name
from drtransfer.config import BackupLocation, backup_location
from drtransfer.endpoints import Endpoint, list_pages
from drtransfer.errors import ConfigError, DrTransferError
from drtransfer.models.store import MANIFEST, Listed, Manifest, list_prefix, model_checkpoints, read_object
from drtransfer.runconfig import RunConfig
from drtransfer.s3errors import answer_timeout, describe_client_error
from drtransfer.workflow import ClientFactory, default_client_factory

PARALLEL = 16
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class CheckpointInfo:
    number: int
    name: str
    metric: float | None = None
    time_stamp: float | None = None


@dataclass
class BackupState:
    url: str
    checkpoint: int | None  # the highest complete checkpoint the backup holds
    created: str


@dataclass
class ModelEntry:
    location: str  # local, backup or upload
    url: str
    bucket: str
    prefix: str
    runs: list[str] = field(default_factory=list)  # labels of the runs that train into / name it
    checkpoints: list[int] = field(default_factory=list)  # complete checkpoints, ascending
    best: CheckpointInfo | None = None
    last: CheckpointInfo | None = None
    size: int = 0
    objects: int = 0
    last_change: dt.datetime | None = None
    backed_up: BackupState | None = None
    uploaded: str | None = None  # the upload URL holding this model's upload
    error: str | None = None
    # What the scan learnt for the reads that follow it (not shown).
    endpoint: Endpoint | None = field(default=None, repr=False)
    has_index: bool = field(default=False, repr=False)
    has_manifest: bool = field(default=False, repr=False)
    source: str | None = field(default=None, repr=False)  # a backup's source, from its manifest

    def to_json(self) -> dict[str, Any]:
        def info(c: CheckpointInfo | None) -> dict[str, Any] | None:
            return (
                None
                if c is None
                else {"number": c.number, "name": c.name, "metric": c.metric, "time_stamp": c.time_stamp}
            )

        return {
            "location": self.location,
            "url": self.url,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "runs": self.runs,
            "checkpoints": len(self.checkpoints),
            "checkpoint_numbers": self.checkpoints,
            "best": info(self.best),
            "last": info(self.last),
            "size": self.size,
            "objects": self.objects,
            "last_change": self.last_change.isoformat() if self.last_change else None,
            "backed_up": None
            if self.backed_up is None
            else {
                "url": self.backed_up.url,
                "checkpoint": self.backed_up.checkpoint,
                "created": self.backed_up.created,
            },
            "uploaded": self.uploaded,
            "error": self.error,
        }


@dataclass(frozen=True)
class CatalogRequest:
    runs: Sequence[RunConfig]
    backups: bool = True
    uploads: bool = True
    environ: Mapping[str, str] | None = field(default=None, repr=False)


def catalog(request: CatalogRequest, *, client_for: ClientFactory = default_client_factory) -> list[ModelEntry]:
    runs = list(request.runs)
    if not runs:
        raise ConfigError("No run to list models for; give run files, experiments or an activated DRfC environment.")
    clients: dict[Endpoint, Any] = {}

    def client(endpoint: Endpoint) -> Any:
        if endpoint not in clients:
            clients[endpoint] = client_for(endpoint)
        return clients[endpoint]

    with ThreadPoolExecutor(PARALLEL) as pool:
        local: list[ModelEntry] = []
        for endpoint, bucket in dict.fromkeys((run.local, run.local_bucket) for run in runs):
            local.extend(_scan(pool, client(endpoint), endpoint, bucket, "", "local"))
        _read_indexes(pool, local, clients)
        backups: list[ModelEntry] = []
        locations: list[BackupLocation | None] = []
        if request.backups:
            for run in runs:
                try:
                    locations.append(backup_location(run, environ=request.environ))
                except ConfigError:
                    locations.append(None)  # no backup bucket: nothing backed up
            places = dict.fromkeys((loc.endpoint, loc.bucket, loc.base) for loc in locations if loc is not None)
            for endpoint, bucket, base in places:
                backups.extend(_scan(pool, client(endpoint), endpoint, bucket, base, "backup"))
            _read_manifests(pool, backups, clients)
        uploads: list[ModelEntry] = []
        if request.uploads:
            targets = [run for run in runs if run.upload is not None and run.upload_prefix]
            found = list(
                pool.map(lambda r: _scan_one(client(r.upload), r.upload, r.upload_bucket, r.upload_prefix), targets)
            )
            uploads = [entry for entry in found if entry is not None]

    # A backup location inside a local bucket is listed as a backup, not as a local model too.
    def place(entry: ModelEntry) -> tuple[str | None, str, str]:
        return (entry.endpoint.url if entry.endpoint else None, entry.bucket, entry.prefix)

    backed = {place(b) for b in backups}
    local = [e for e in local if place(e) not in backed]
    _link(runs, local, backups, uploads, locations)
    return local + backups + uploads


def _scan(
    pool: ThreadPoolExecutor, client: Any, endpoint: Endpoint, bucket: str, base: str, kind: str
) -> list[ModelEntry]:
    """The models under ``base/`` (the bucket root for ""): one delimited listing, then each top-level
    prefix listed in parallel."""
    root = base.strip("/") + "/" if base.strip("/") else ""
    tops: list[str] = []
    try:
        for page in list_pages(client.list_objects_v2, Bucket=bucket, Prefix=root, Delimiter="/"):
            tops.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
    except Exception as error:
        raise describe_client_error(
            error, endpoint=endpoint, bucket=bucket, action="list objects", answer_within=answer_timeout(client)
        ) from None
    listings = pool.map(lambda top: (top, list_prefix(client, endpoint, bucket, top)), tops)
    entries = []
    for top, listing in listings:
        for model_root, objects in _models_in(top.rstrip("/"), listing).items():
            entries.append(_entry(kind, endpoint, bucket, model_root, objects))
    for entry in entries:
        entry.location = kind
    return entries


def _scan_one(client: Any, endpoint: Endpoint, bucket: str, prefix: str) -> ModelEntry | None:
    listing = list_prefix(client, endpoint, bucket, prefix)
    if not any(key.startswith("model/") for key in listing):
        return None
    return _entry("upload", endpoint, bucket, prefix.strip("/"), listing)


def _models_in(top: str, listing: dict[str, Listed]) -> dict[str, dict[str, Listed]]:
    """Group a top-level prefix's objects by model root (the longest prefix that has ``model/`` under it)."""
    roots = set()
    for key in listing:
        path = f"{top}/{key}"
        head, sep, _ = path.partition("/model/")
        if sep:
            roots.add(head)
    models: dict[str, dict[str, Listed]] = {root: {} for root in roots}
    for key, obj in listing.items():
        path = f"{top}/{key}"
        owner = max((r for r in roots if path.startswith(r + "/")), key=len, default=None)
        if owner is not None:
            relative = path[len(owner) + 1 :]
            models[owner][relative] = Listed(relative, obj.size, obj.etag, obj.modified)
    return models


def _entry(kind: str, endpoint: Endpoint, bucket: str, prefix: str, objects: dict[str, Listed]) -> ModelEntry:
    numbers = sorted(n for n, c in model_checkpoints(objects).items() if c.complete)
    times = [o.modified for o in objects.values() if o.modified is not None]
    entry = ModelEntry(kind, f"s3://{bucket}/{prefix}/", bucket, prefix, checkpoints=numbers)
    entry.size = sum(o.size for o in objects.values())
    entry.objects = len(objects)
    entry.last_change = max(times, default=None)
    entry.endpoint = endpoint
    entry.has_index = "model/deepracer_checkpoints.json" in objects
    entry.has_manifest = MANIFEST in objects
    if kind == "upload" and numbers:
        entry.last = CheckpointInfo(numbers[-1], _name(objects, numbers[-1]))
    return entry


def _name(objects: dict[str, Listed], number: int) -> str:
    for key in objects:
        name = key.removeprefix("model/").split(".ckpt")[0] + ".ckpt"
        parsed = parse_checkpoint_name(name)
        if parsed is not None and parsed[0] == number:
            return name
    return f"model_{number}.pb"


def _each(pool: ThreadPoolExecutor, items: Iterable[T], work: Callable[[T], R]) -> list[R]:
    return list(pool.map(work, items))


def _read_indexes(pool: ThreadPoolExecutor, entries: Sequence[ModelEntry], clients: dict[Endpoint, Any]) -> None:
    def read(entry: ModelEntry) -> None:
        endpoint = entry.endpoint
        if not entry.has_index or endpoint is None:
            return
        key = f"{entry.prefix}/model/deepracer_checkpoints.json"
        try:
            raw = read_object(clients[endpoint], endpoint, entry.bucket, key)
            if raw is None:
                return
            index = CheckpointIndex.parse(raw, f"s3://{entry.bucket}/{key}")
        except DrTransferError as error:
            entry.error = str(error)
            return
        entry.best, entry.last = _info(index.best), _info(index.last)

    _each(pool, entries, read)


def _info(raw: dict[str, Any] | None) -> CheckpointInfo | None:
    if raw is None:
        return None
    parsed = parse_checkpoint_name(raw["name"])
    assert parsed is not None  # CheckpointIndex.parse checked the name
    metric = raw.get("avg_eval_metric", raw.get("avg_comp_pct"))
    stamp = raw.get("time_stamp")
    return CheckpointInfo(
        parsed[0],
        raw["name"],
        float(metric) if isinstance(metric, int | float) else None,
        float(stamp) if isinstance(stamp, int | float) else None,
    )


def _read_manifests(pool: ThreadPoolExecutor, entries: Sequence[ModelEntry], clients: dict[Endpoint, Any]) -> None:
    def read(entry: ModelEntry) -> None:
        endpoint = entry.endpoint
        if not entry.has_manifest or endpoint is None:
            entry.error = f"no {MANIFEST}: an unfinished backup"
            return
        url = f"{entry.url}{MANIFEST}"
        try:
            raw = read_object(clients[endpoint], endpoint, entry.bucket, f"{entry.prefix}/{MANIFEST}")
            if raw is None:
                return
            manifest = Manifest.parse(raw, url)
        except DrTransferError as error:
            entry.error = str(error)
            return
        entry.backed_up = BackupState(entry.url, manifest.checkpoint, manifest.created)
        entry.source = manifest.source

    _each(pool, entries, read)


def _link(
    runs: Sequence[RunConfig],
    local: Sequence[ModelEntry],
    backups: Sequence[ModelEntry],
    uploads: Sequence[ModelEntry],
    locations: Sequence[BackupLocation | None],
) -> None:
    """Each local model gets the runs that train into it, its backup (by the manifest's source) and its
    upload (the upload prefix of a run training into it)."""
    by_source = {b.source: b for b in backups if b.backed_up is not None}
    by_upload = {(u.bucket, u.prefix): u for u in uploads}
    for entry in local:
        backup = by_source.get(f"s3://{entry.bucket}/{entry.prefix}/")
        if backup is not None:
            entry.backed_up = backup.backed_up
    for index, run in enumerate(runs):
        for entry in local:
            if (entry.bucket, entry.prefix) == (run.local_bucket, run.model_prefix):
                entry.runs.append(run.label)
                upload = by_upload.get((run.upload_bucket, run.upload_prefix))
                if upload is not None:
                    entry.uploaded = upload.url
                    upload.runs.append(run.label)
        location = locations[index] if index < len(locations) else None
        for backup in backups:
            if location is not None and backup.url == location.url(run.model_prefix) + "/":
                backup.runs.append(run.label)
