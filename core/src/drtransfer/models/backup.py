"""The backup job behind ``drtransfer backup`` and ``dr-upload-model -A``: each run's whole training
prefix (every checkpoint, ``model/`` index files, metrics, ``ip/``, the yaml files, the reward function,
simtraces) and the run's custom files, copied to its backup location by the transfer engine.

Incremental: an object whose size and ETag the backup already holds (by the backup's listing, or by the
previous manifest for objects whose ETag changed shape on the way) is not copied again. The manifest
(:data:`~drtransfer.models.store.MANIFEST`) is a commit object of the plan: the engine deletes an older
one before anything else is written and writes the new one only after every copy succeeded and was
verified, so a half backup never has a manifest. Objects an earlier backup holds and the training
prefix no longer has (checkpoints that training or ``prune`` deleted) stay in the backup and its manifest.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from drtransfer.config import BackupLocation, backup_location
from drtransfer.endpoints import Endpoint
from drtransfer.engine import TransferSubscriber, run_transfer
from drtransfer.errors import ConfigError, DrTransferError
from drtransfer.jobs.base import Confirm, Declined, always
from drtransfer.locking import target_locks
from drtransfer.models.store import (
    MANIFEST,
    JobSettings,
    Listed,
    Manifest,
    ManifestObject,
    check_bucket,
    list_prefix,
    read_object,
    same_object,
    source_object,
)
from drtransfer.operations import CopyObject, ModelPlan, ModelResult, ObjectLocation, PutBytes, SourceObject
from drtransfer.runconfig import RunConfig
from drtransfer.workflow import ClientFactory, default_client_factory

CUSTOM_FILES = "custom_files"


@dataclass(frozen=True)
class BackupRequest(JobSettings):
    runs: Sequence[RunConfig]
    dry_run: bool = False


@dataclass
class PreparedBackup:
    run: RunConfig
    location: BackupLocation
    sources: dict[str, SourceObject] = field(default_factory=dict)  # backup-relative key -> source object
    plan: ModelPlan | None = None
    unchanged: int = 0
    error: str | None = None

    @property
    def target_prefix(self) -> str:
        return self.location.prefix_for(self.run.model_prefix)

    @property
    def target_url(self) -> str:
        return self.location.url(self.run.model_prefix) + "/"

    @property
    def copies(self) -> int:
        return sum(1 for op in self.plan.operations if isinstance(op, CopyObject)) if self.plan else 0


@dataclass
class BackupOutcome:
    prepared: PreparedBackup
    result: ModelResult
    order: list[str] = field(default_factory=list)  # backup-relative keys as the engine finished them


@dataclass
class BackupReport:
    outcomes: list[BackupOutcome]
    seconds: float
    dry_run: bool

    @property
    def ok(self) -> bool:
        return all(o.result.status in ("ok", "dry-run") for o in self.outcomes)


def backup(
    request: BackupRequest,
    *,
    confirm: Confirm = always,
    subscribers: Sequence[TransferSubscriber] = (),
    client_for: ClientFactory = default_client_factory,
) -> BackupReport:
    """ConfigError (exit 2, nothing written) for a missing backup bucket or clashing backups; a run
    whose prefix cannot be read is reported failed, the others go on."""
    started = time.monotonic()
    runs = list(request.runs)
    if not runs:
        raise ConfigError("No run to back up; give run files, experiments or an activated DRfC environment.")
    locations = name_backup_endpoints([backup_location(run, environ=request.environ) for run in runs])
    _check_distinct(runs, locations)
    checked: set[tuple[Endpoint, str]] = set()
    for location in locations:
        if (location.endpoint, location.bucket) not in checked:
            checked.add((location.endpoint, location.bucket))
            check_bucket(client_for(location.endpoint), location.endpoint, location.bucket, "DR_BACKUP_S3_BUCKET")
    prepared = [_prepare(run, location, client_for) for run, location in zip(runs, locations, strict=True)]
    if not request.dry_run and any(p.plan and p.plan.operations for p in prepared) and not confirm(prepared):
        raise Declined()
    outcomes = _execute(prepared, request, subscribers)
    return BackupReport(outcomes, time.monotonic() - started, request.dry_run)


def name_backup_endpoints(locations: Sequence[BackupLocation]) -> list[BackupLocation]:
    """Backup endpoints that differ get different names (the engine looks endpoints up by name)."""
    seen: dict[Endpoint, str] = {}
    out = []
    for location in locations:
        name = seen.setdefault(location.endpoint, "backup" if not seen else f"backup-{len(seen) + 1}")
        out.append(dataclasses.replace(location, endpoint=dataclasses.replace(location.endpoint, name=name)))
    return out


def _check_distinct(runs: Sequence[RunConfig], locations: Sequence[BackupLocation]) -> None:
    seen: dict[tuple[str | None, str, str], RunConfig] = {}
    for run, location in zip(runs, locations, strict=True):
        key = (location.endpoint.url, location.bucket, location.prefix_for(run.model_prefix))
        if key in seen:
            raise ConfigError(
                f"{seen[key].label} and {run.label} would both back up to {location.url(run.model_prefix)}; "
                f"give them different DR_BACKUP_S3_PREFIX values."
            )
        seen[key] = run


def _prepare(run: RunConfig, location: BackupLocation, client_for: ClientFactory) -> PreparedBackup:
    item = PreparedBackup(run, location)
    try:
        local = client_for(run.local)
        sources = _sources(run, local)
        if not any(key.startswith("model/") for key in sources):
            raise DrTransferError(f"{run.source_url}/ holds no model/ objects: there is no training to back up.")
        item.sources = sources
        backup_client = client_for(location.endpoint)
        existing = list_prefix(backup_client, location.endpoint, location.bucket, item.target_prefix)
        previous = None
        if MANIFEST in existing:
            raw = read_object(backup_client, location.endpoint, location.bucket, f"{item.target_prefix}/{MANIFEST}")
            if raw is not None:
                try:
                    previous = Manifest.parse(raw, f"{item.target_url}{MANIFEST}")
                except ConfigError:
                    previous = None  # rewritten below
        item.plan = _plan(item, existing, previous)
    except ConfigError:
        raise
    except DrTransferError as error:
        item.error = str(error)
    return item


def _sources(run: RunConfig, client: Any) -> dict[str, SourceObject]:
    """Everything to back up, by backup-relative key: the training prefix, its metrics when they live
    elsewhere (``DR_LOCAL_S3_METRICS_PREFIX``) under ``metrics/``, and the custom files under
    ``custom_files/``."""
    places = [("", run.model_prefix)]
    inside = run.metrics_prefix == run.model_prefix or run.metrics_prefix.startswith(run.model_prefix + "/")
    if not inside:
        places.append(("metrics/", run.metrics_prefix))
    custom = run.values.get("DR_LOCAL_S3_CUSTOM_FILES_PREFIX", CUSTOM_FILES).strip("/")
    if custom and custom != run.model_prefix and not custom.startswith(run.model_prefix + "/"):
        places.append((f"{CUSTOM_FILES}/", custom))
    found: dict[str, SourceObject] = {}
    for under, prefix in places:
        for key, listed in list_prefix(client, run.local, run.local_bucket, prefix).items():
            found[under + key] = source_object(run.local, run.local_bucket, prefix, listed)
    found.pop(MANIFEST, None)  # a restored backup's manifest is not the model's
    return found


def _plan(item: PreparedBackup, existing: dict[str, Listed], previous: Manifest | None) -> ModelPlan:
    run, location = item.run, item.location
    root = ObjectLocation(location.endpoint.name, location.bucket, item.target_prefix + "/")
    plan = ModelPlan(model_id=run.key, target_root=root)
    objects: dict[str, ManifestObject] = {}
    if previous is not None:  # what earlier backups hold and the prefix no longer has stays described
        for key, entry in previous.objects.items():
            there = existing.get(key)
            if there is not None and same_object(there.size, there.etag, entry.size, entry.etag):
                objects[key] = entry
    for relative, listed in sorted(item.sources.items()):
        objects[relative] = ManifestObject(listed.size, listed.etag)
        there = existing.get(relative)
        known = previous.objects.get(relative) if previous is not None else None
        if (
            there is not None
            and there.size == listed.size
            and (
                there.etag == listed.etag
                or (known is not None and (known.size, known.etag) == (listed.size, listed.etag))
            )
        ):
            item.unchanged += 1
            continue
        plan.add(CopyObject(listed, ObjectLocation(root.endpoint, root.bucket, root.key + relative)))
    manifest = Manifest.new(f"{run.source_url}/", dict(run.values), objects)
    if plan.operations or previous is None or previous.objects != objects:
        plan.add(PutBytes(ObjectLocation(root.endpoint, root.bucket, root.key + MANIFEST), manifest.to_bytes(),
                          "application/json", commit=True))  # fmt: skip
    return plan


class _Order(TransferSubscriber):
    def __init__(self) -> None:
        self.order: dict[str, list[str]] = {}

    def on_operation(self, model_id: str, result: Any, **kwargs: Any) -> None:
        self.order.setdefault(model_id, []).append(result.operation.target.key)


def _execute(
    prepared: Sequence[PreparedBackup], request: BackupRequest, subscribers: Sequence[TransferSubscriber]
) -> list[BackupOutcome]:
    ready = [p for p in prepared if p.plan is not None and p.plan.operations]
    plans = [p.plan for p in ready if p.plan is not None]
    endpoints: dict[str, Endpoint] = {}
    for item in prepared:
        endpoints[item.run.local.name] = item.run.local
        endpoints[item.location.endpoint.name] = item.location.endpoint
    order = _Order()
    settings = dataclasses.replace(request.engine, dry_run=request.dry_run)
    locks = [] if request.dry_run else [(p.location.endpoint.url or "aws", p.target_url) for p in ready]
    with target_locks(locks):
        results = run_transfer(plans, endpoints, settings, [*subscribers, order]) if plans else []
    by_item = {id(p): r for p, r in zip(ready, results, strict=True)}
    outcomes = []
    for item in prepared:
        result = by_item.get(id(item))
        if result is None:
            status = "failed" if item.error else ("dry-run" if request.dry_run else "ok")
            result = ModelResult(item.run.key, status, error=item.error)  # type: ignore[arg-type]
        root = item.target_prefix + "/"
        keys = [k[len(root) :] for k in order.order.get(item.run.key, [])]
        outcomes.append(BackupOutcome(item, result, keys))
    return outcomes
