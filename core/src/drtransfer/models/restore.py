"""The restore job behind ``drtransfer restore``: a backup (or a model uploaded in the import layout)
back into the local bucket as a training prefix DRfC can start from.

Every check comes before any write (exit 2, nothing written): the URL, the backup against its manifest
(each object listed with the manifest's size and checksum), the ``--as`` prefix (refused when it holds
objects, unless ``overwrite``: then what the backup lacks is deleted), the pretrained checkpoint and
run file. The engine copies and verifies each object; afterwards the restored prefix is listed and
compared with the manifest once more. Only then does ``--pretrained`` edit the run file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drtransfer.config import backup_location, set_run_variables
from drtransfer.endpoints import Endpoint
from drtransfer.engine import TransferSubscriber, run_transfer
from drtransfer.errors import ConfigError, TransferError
from drtransfer.locking import target_locks
from drtransfer.models.store import (
    MANIFEST,
    JobSettings,
    Listed,
    Manifest,
    check_bucket,
    list_prefix,
    model_checkpoints,
    read_object,
    same_object,
    source_object,
)
from drtransfer.operations import CopyObject, ModelPlan, ModelResult, ObjectLocation
from drtransfer.plan import add_wipe
from drtransfer.runconfig import RunConfig
from drtransfer.workflow import ClientFactory, default_client_factory

PRETRAINED_CHOICES = ("best", "last")


@dataclass(frozen=True)
class RestoreRequest(JobSettings):
    run: RunConfig  # whose local bucket receives the model and whose backup settings reach the URL
    backup_url: str
    prefix: str
    overwrite: bool = False
    pretrained: Path | None = None  # the run file that gets DR_LOCAL_S3_PRETRAINED*
    checkpoint: str = "last"


@dataclass
class RestoreReport:
    source: str
    target: str
    kind: str  # "backup" or "import layout"
    objects: int
    bytes: int
    result: ModelResult
    note: str = ""
    pretrained: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result.status == "ok"


def parse_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
        raise ConfigError(f"{url!r} is not an S3 URL; write s3://BUCKET/PREFIX, as drtransfer models shows it.")
    bucket, _, prefix = url[5:].partition("/")
    if not prefix.strip("/"):
        raise ConfigError(f"{url} names a whole bucket; give the backup's prefix, e.g. s3://{bucket}/backups/my-model.")
    return bucket, prefix.strip("/")


def check_prefix(prefix: str) -> str:
    clean = prefix.strip("/")
    if not clean or any(part in ("", ".", "..") for part in clean.split("/")):
        raise ConfigError(f"--as {prefix!r} is not a model prefix; give a name such as my-model-restored.")
    return clean


def check_checkpoint(value: str) -> str:
    if value in PRETRAINED_CHOICES or (value.isascii() and value.isdigit()):
        return value if value in PRETRAINED_CHOICES else str(int(value))
    raise ConfigError(f"--checkpoint {value!r}: choose best, last or a checkpoint number such as 12.")


def restore(
    request: RestoreRequest,
    *,
    subscribers: tuple[TransferSubscriber, ...] = (),
    client_for: ClientFactory = default_client_factory,
) -> RestoreReport:
    started = time.monotonic()
    run = request.run
    bucket, prefix = parse_s3_url(request.backup_url)
    target_prefix = check_prefix(request.prefix)
    checkpoint = check_checkpoint(request.checkpoint)
    if request.pretrained is not None and not request.pretrained.is_file():
        raise ConfigError(f"The run file {request.pretrained} does not exist; check the --pretrained path.")
    location = backup_location(run, environ=request.environ, bucket=bucket)
    endpoint = location.endpoint
    source_client = client_for(endpoint)
    check_bucket(source_client, endpoint, bucket, "the backup URL")
    listing = list_prefix(source_client, endpoint, bucket, prefix)
    url = f"s3://{bucket}/{prefix}/"
    objects, kind, note = _what_to_restore(listing, url, source_client, endpoint, bucket, prefix)
    _check_pretrained_checkpoint(checkpoint, objects, url)
    local = client_for(run.local)
    check_bucket(local, run.local, run.local_bucket, "DR_LOCAL_S3_BUCKET")
    existing = list_prefix(local, run.local, run.local_bucket, target_prefix)
    target_url = f"s3://{run.local_bucket}/{target_prefix}/"
    if existing and not request.overwrite:
        raise ConfigError(
            f"{target_url} already holds {len(existing)} object(s); choose another --as prefix, or pass --overwrite "
            f"to replace them with the backup."
        )
    root = ObjectLocation(run.local.name, run.local_bucket, target_prefix + "/")
    plan = ModelPlan(model_id=run.key, target_root=root)
    for key, _listed in sorted(objects.items()):
        source = source_object(endpoint, bucket, prefix, listing[key])
        plan.add(CopyObject(source, ObjectLocation(root.endpoint, root.bucket, root.key + key)))
    if existing:
        add_wipe(plan, {root.key + k: v.size for k, v in existing.items()})
    endpoints = {run.local.name: run.local, endpoint.name: endpoint}
    with target_locks([(run.local.url or "aws", target_url)]):
        [result] = run_transfer([plan], endpoints, request.engine, subscribers)
    report = RestoreReport(url, target_url, kind, len(objects), sum(o.size for o in objects.values()), result, note)
    if result.status == "ok":
        _verify(local, run, target_prefix, objects, target_url)
        if request.pretrained is not None:
            report.pretrained = {
                "DR_LOCAL_S3_PRETRAINED": "True",
                "DR_LOCAL_S3_PRETRAINED_PREFIX": target_prefix,
                "DR_LOCAL_S3_PRETRAINED_CHECKPOINT": checkpoint,
            }
            set_run_variables(request.pretrained, report.pretrained)
    report.seconds = time.monotonic() - started
    return report


def _what_to_restore(
    listing: dict[str, Listed], url: str, client: Any, endpoint: Endpoint, bucket: str, prefix: str
) -> tuple[dict[str, Listed], str, str]:
    """The objects to restore (relative keys), what the URL holds, and a note on what travels."""
    if MANIFEST in listing:
        raw = read_object(client, endpoint, bucket, f"{prefix}/{MANIFEST}")
        if raw is None:
            raise ConfigError(f"{url}{MANIFEST} disappeared while reading the backup; run the command again.")
        manifest = Manifest.parse(raw, f"{url}{MANIFEST}")
        wrong = manifest.mismatches(listing)
        if wrong:
            raise ConfigError(
                f"The backup at {url} does not match its manifest: {len(wrong)} object(s) missing or different "
                f"(first {wrong[0]}); back the model up again or restore another backup."
            )
        objects = {key: listing[key] for key in manifest.objects}
        return objects, "backup", f"backup of {manifest.source} made {manifest.created}"
    if "model/model_metadata.json" not in listing or not model_checkpoints(listing):
        raise ConfigError(
            f"{url} holds neither a drtransfer backup ({MANIFEST}) nor a model in the import layout "
            f"(model/model_metadata.json and a checkpoint); check the URL."
        )
    objects = dict(listing)
    numbers = sorted(n for n, c in model_checkpoints(listing).items() if c.complete)
    held = ", ".join(str(n) for n in numbers) or "none complete"
    note = (
        f"no {MANIFEST}: an uploaded model in the import layout; restoring its {len(objects)} object(s) as they "
        f"are (checkpoint {held}, its index and metadata, reward function, hyperparameters, metrics); earlier "
        f"checkpoints and simtraces were never uploaded"
    )
    return objects, "import layout", note


def _check_pretrained_checkpoint(checkpoint: str, objects: dict[str, Listed], url: str) -> None:
    if checkpoint in PRETRAINED_CHOICES:
        if "model/deepracer_checkpoints.json" not in objects:
            raise ConfigError(
                f"{url} has no model/deepracer_checkpoints.json, so DRfC cannot find its {checkpoint} checkpoint; "
                f"give a checkpoint number."
            )
        return
    found = model_checkpoints(objects).get(int(checkpoint))
    if found is None or not found.complete:
        numbers = sorted(n for n, c in model_checkpoints(objects).items() if c.complete)
        raise ConfigError(
            f"{url} holds no complete checkpoint {checkpoint} (it has {', '.join(map(str, numbers)) or 'none'}); "
            f"choose one of those, best or last."
        )


def _verify(client: Any, run: RunConfig, prefix: str, objects: dict[str, Listed], url: str) -> None:
    """The restored prefix, listed once, must hold every object with the backup's size and checksum."""
    restored = list_prefix(client, run.local, run.local_bucket, prefix)
    wrong = [
        key
        for key, obj in sorted(objects.items())
        if key not in restored or not same_object(restored[key].size, restored[key].etag, obj.size, obj.etag)
    ]
    if wrong:
        raise TransferError(
            f"{url} does not match the backup after the copy: {len(wrong)} object(s) missing or different "
            f"(first {wrong[0]}); run the restore again with --overwrite."
        )
