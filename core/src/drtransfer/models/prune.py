"""The prune job behind ``drtransfer prune``: free local space by deleting old checkpoints of each run's
training prefix, only those a verified backup holds.

Kept always: the best and the last checkpoint of ``model/deepracer_checkpoints.json``, the newest saved
one (``model/.coach_checkpoint``) and the ``keep`` highest numbers. Every other checkpoint is deleted
only when each of its files is in the backup manifest with the local size and checksum and the
backup's listing holds it so; any other is kept and said why. A run without a manifest at its backup
location stops the command before anything is deleted (exit 2). Dry run unless ``delete``.

The deletes go through the engine as a plan marked ``fresh_target``: the engine then leaves the
training prefix's multipart uploads alone (a training that is still running may be uploading a
checkpoint there); the prefix is listed afterwards to check that every deleted object is gone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from drtransfer.checkpoints import CheckpointIndex, parse_checkpoint_name
from drtransfer.config import backup_location
from drtransfer.engine import EngineSettings, TransferSubscriber, run_transfer
from drtransfer.errors import ConfigError, ModelError, TransferError
from drtransfer.models.backup import name_backup_endpoints
from drtransfer.models.store import (
    MANIFEST,
    JobSettings,
    Listed,
    Manifest,
    list_prefix,
    model_checkpoints,
    read_object,
    same_object,
)
from drtransfer.operations import DeleteObject, ModelPlan, ModelResult, ObjectLocation
from drtransfer.runconfig import RunConfig
from drtransfer.workflow import ClientFactory, default_client_factory


@dataclass(frozen=True)
class PruneRequest(JobSettings):
    runs: Sequence[RunConfig]
    keep: int
    delete: bool = False  # --yes; otherwise a dry run


@dataclass
class PrunePlan:
    run: RunConfig
    backup_url: str
    delete: list[int] = field(default_factory=list)
    kept: dict[int, str] = field(default_factory=dict)  # checkpoint -> why it stays
    keys: list[tuple[str, int]] = field(default_factory=list)  # local keys to delete, with sizes
    result: ModelResult | None = None

    @property
    def freed(self) -> int:
        return sum(size for _, size in self.keys)


@dataclass
class PruneReport:
    plans: list[PrunePlan]
    deleted: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return all(p.result is None or p.result.status == "ok" for p in self.plans)


def prune(
    request: PruneRequest,
    *,
    subscribers: Sequence[TransferSubscriber] = (),
    client_for: ClientFactory = default_client_factory,
) -> PruneReport:
    started = time.monotonic()
    runs = list(request.runs)
    if not runs:
        raise ConfigError("No run to prune; give run files, experiments or an activated DRfC environment.")
    if request.keep < 0:
        raise ConfigError(f"--keep {request.keep}: give how many of the newest checkpoints to keep, 0 or more.")
    locations = name_backup_endpoints([backup_location(run, environ=request.environ) for run in runs])
    plans = []
    for run, location in zip(runs, locations, strict=True):
        prefix = location.prefix_for(run.model_prefix)
        backup_client = client_for(location.endpoint)
        url = location.url(run.model_prefix) + "/"
        raw = read_object(backup_client, location.endpoint, location.bucket, f"{prefix}/{MANIFEST}")
        if raw is None:
            raise ConfigError(
                f"{run.label}: there is no verified backup at {url} (no {MANIFEST}), so nothing may be pruned; "
                f"run drtransfer backup first."
            )
        manifest = Manifest.parse(raw, url + MANIFEST)
        backed = list_prefix(backup_client, location.endpoint, location.bucket, prefix)
        if manifest.source != f"{run.source_url}/":
            raise ConfigError(
                f"{run.label}: the backup at {url} is of {manifest.source}, not of {run.source_url}/; "
                f"back this run up before pruning it."
            )
        local = list_prefix(client_for(run.local), run.local, run.local_bucket, f"{run.model_prefix}/model")
        index = read_object(
            client_for(run.local), run.local, run.local_bucket, f"{run.model_prefix}/model/deepracer_checkpoints.json"
        )
        coach = read_object(
            client_for(run.local), run.local, run.local_bucket, f"{run.model_prefix}/model/.coach_checkpoint"
        )
        plans.append(_plan(run, url, local, index, coach, manifest, backed, request.keep))
    if request.delete:
        _delete(plans, request.engine, subscribers, client_for)
    return PruneReport(plans, request.delete, time.monotonic() - started)


def _protected(run: RunConfig, index: bytes | None, coach: bytes | None) -> dict[int, str]:
    if index is None:
        raise ConfigError(
            f"{run.label}: {run.source_url}/model/deepracer_checkpoints.json is missing, so the best and last "
            f"checkpoints are unknown and nothing is pruned."
        )
    try:
        parsed = CheckpointIndex.parse(index, f"{run.source_url}/model/deepracer_checkpoints.json")
    except ModelError as error:
        raise ConfigError(f"{run.label}: {error}") from None
    out: dict[int, str] = {}
    for what, entry in (("best", parsed.best), ("last", parsed.last)):
        found = parse_checkpoint_name(entry["name"]) if entry else None
        if found is not None:
            out.setdefault(found[0], f"the {what} checkpoint")
    found = parse_checkpoint_name(coach.decode(errors="replace").strip()) if coach else None
    if found is not None:
        out.setdefault(found[0], "the newest saved checkpoint (.coach_checkpoint)")
    return out


def _plan(
    run: RunConfig,
    url: str,
    local: dict[str, Listed],
    index: bytes | None,
    coach: bytes | None,
    manifest: Manifest,
    backed: dict[str, Listed],
    keep: int,
) -> PrunePlan:
    plan = PrunePlan(run, url)
    files = {f"model/{k}": v for k, v in local.items()}
    checkpoints = model_checkpoints(files)
    plan.kept = _protected(run, index, coach)
    for number in sorted(checkpoints)[::-1][:keep]:
        plan.kept.setdefault(number, f"one of the {keep} newest")
    for number in sorted(checkpoints):
        if number in plan.kept:
            continue
        keys = [key for key in files if _belongs(key, number)]
        missing = [key for key in keys if not _backed_up(files[key], key, manifest, backed)]
        if missing:
            plan.kept[number] = f"not verified in the backup ({missing[0]})"
            continue
        plan.delete.append(number)
        plan.keys.extend((f"{run.model_prefix}/{key}", files[key].size) for key in sorted(keys))
    return plan


def _belongs(key: str, number: int) -> bool:
    name = key.removeprefix("model/")
    return name == f"model_{number}.pb" or name.startswith(f"{number}_Step-")


def _backed_up(obj: Listed, key: str, manifest: Manifest, backed: dict[str, Listed]) -> bool:
    entry = manifest.objects.get(key)
    there = backed.get(key)
    return (
        entry is not None
        and there is not None
        and same_object(obj.size, obj.etag, entry.size, entry.etag)
        and same_object(there.size, there.etag, entry.size, entry.etag)
    )


def _delete(
    plans: Sequence[PrunePlan],
    settings: EngineSettings,
    subscribers: Sequence[TransferSubscriber],
    client_for: ClientFactory,
) -> None:
    work = [p for p in plans if p.keys]
    model_plans = []
    for item in work:
        run = item.run
        root = ObjectLocation(run.local.name, run.local_bucket, f"{run.model_prefix}/model/")
        model_plan = ModelPlan(run.key, root, fresh_target=True)
        for key, size in item.keys:
            model_plan.add(DeleteObject(ObjectLocation(run.local.name, run.local_bucket, key), size))
        model_plans.append(model_plan)
    endpoints = {p.run.local.name: p.run.local for p in work}
    results = run_transfer(model_plans, endpoints, settings, subscribers) if model_plans else []
    for item, result in zip(work, results, strict=True):
        item.result = result
        if result.status != "ok":
            continue
        left = list_prefix(
            client_for(item.run.local), item.run.local, item.run.local_bucket, f"{item.run.model_prefix}/model"
        )
        still = [key for key, _ in item.keys if key.removeprefix(f"{item.run.model_prefix}/model/") in left]
        if still:
            result.status = "failed"
            result.error = str(TransferError(f"{len(still)} deleted object(s) are still listed (first {still[0]})."))
