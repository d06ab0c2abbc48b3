"""Model inspection: one paginated listing of a run's model prefix, parsed into what the plan needs.

Every missing piece is its own :class:`~drtransfer.errors.ModelError` naming the ``s3://`` URL that was
looked for; unreachable or silent endpoints, refused credentials and missing buckets are configuration
errors.

The reward function is, in order: ``--reward-function`` (a local file or an object on the local
endpoint); ``<prefix>/reward_function.py``; else ``DR_LOCAL_S3_REWARD_KEY``, but only for the run's own
prefix. That key holds the run's current training's reward function, so for a prefix given with ``-p``
(another model) a missing root file is refused, as DRfC's ``dr-upload-model -p`` refuses it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drtransfer.checkpoints import Checkpoint, CheckpointIndex, Selection, group_checkpoints, parse_checkpoint_name
from drtransfer.endpoints import list_pages
from drtransfer.errors import ConfigError, ModelError
from drtransfer.operations import ObjectLocation, SourceObject
from drtransfer.runconfig import RunConfig
from drtransfer.s3errors import answer_timeout, describe_client_error, is_not_found

KEEP_READ_LIMIT = 1024 * 1024  # files up to this size are read from the source once per inspection


@dataclass(frozen=True)
class LocalFile:
    """A file read from the local disk (``--reward-function PATH``), uploaded as its bytes."""

    path: str
    body: bytes = field(repr=False)


@dataclass
class ModelInventory:
    """What one run's model prefix holds; ``objects`` are keyed by their full key.

    ``reward_function`` is None only when the model was inspected without it (car packages).
    """

    run: RunConfig
    objects: dict[str, SourceObject]
    model_files: dict[str, SourceObject]
    checkpoints: dict[int, Checkpoint]
    index: CheckpointIndex
    index_url: str
    reward_function: SourceObject | LocalFile | None
    model_metadata: SourceObject
    metadata: dict[str, Any]
    metadata_body: bytes = field(repr=False)  # the bytes ``metadata`` was parsed from (the plan puts them)
    hyperparameters: SourceObject
    metrics: list[SourceObject]
    training_params: SourceObject | None
    reader: Callable[[SourceObject], bytes] = field(repr=False)

    def read(self, obj: SourceObject) -> bytes:
        return self.reader(obj)

    def url(self, relative: str) -> str:
        return f"s3://{self.run.local_bucket}/{self.run.model_prefix}/{relative}"

    @property
    def complete_checkpoints(self) -> list[Checkpoint]:
        return sorted((c for c in self.checkpoints.values() if c.complete), key=lambda c: c.number)

    def checkpoint(self, number: int) -> Checkpoint:
        """Checkpoint ``number`` if all its files are present, else a ModelError saying what is missing."""
        ckpt = self.checkpoints.get(number)
        if ckpt is None:
            have = ", ".join(str(c.number) for c in self.complete_checkpoints) or "none"
            raise ModelError(f"Checkpoint {number} is not in {self.url('model/')} (complete checkpoints: {have}).")
        if not ckpt.complete:
            raise ModelError(
                f"Checkpoint {number} in {self.url('model/')} is incomplete: missing "
                f"{', '.join(ckpt.missing)}; choose another checkpoint."
            )
        return ckpt

    def require_index_entry(self, which: str) -> dict[str, Any]:
        entry = self.index.best if which == "best" else self.index.last
        if entry is None:
            raise ModelError(f"{self.index_url} has no {which}_checkpoint entry; choose another checkpoint.")
        return entry

    def selection_from_entry(self, entry: dict[str, Any], explanation: str) -> Selection:
        """A selection of the checkpoint an index entry names, after checking its files are all there."""
        parsed = parse_checkpoint_name(entry["name"])
        assert parsed is not None  # CheckpointIndex.parse validated the name
        number, step = parsed
        ckpt = self.checkpoints.get(number)
        if ckpt is None or ckpt.step != step or not ckpt.complete:
            missing = ckpt.missing if ckpt and ckpt.step == step else [f"{entry['name']}.*", f"model_{number}.pb"]
            raise ModelError(
                f"{self.index_url} names {entry['name']}, but its files were deleted since it was written "
                f"(missing in {self.url('model/')}: {', '.join(missing)})."
            )
        return Selection(ckpt, explanation, dict(entry))

    def selection_of(self, ckpt: Checkpoint, explanation: str, metric: float | None = None) -> Selection:
        """A selection of a checkpoint found by number; reuses its index entry when the index has one."""
        for entry in (self.index.last, self.index.best):
            if entry and entry["name"] == ckpt.name:
                return Selection(ckpt, explanation, dict(entry))
        return Selection(ckpt, explanation, {"name": ckpt.name, "time_stamp": time.time(), "avg_eval_metric": metric})


def _list(client: Any, run: RunConfig, prefix: str, what: str) -> dict[str, SourceObject]:
    objects: dict[str, SourceObject] = {}
    try:
        for page in list_pages(client.list_objects_v2, Bucket=run.local_bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                loc = ObjectLocation(run.local.name, run.local_bucket, item["Key"])
                objects[item["Key"]] = SourceObject(loc, int(item["Size"]), item["ETag"].strip('"'))
    except Exception as error:
        raise describe_client_error(
            error,
            endpoint=run.local,
            bucket=run.local_bucket,
            action=f"list {what}",
            answer_within=answer_timeout(client),
        ) from None
    return objects


def _head(client: Any, run: RunConfig, bucket: str, key: str) -> SourceObject | None:
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except Exception as error:
        if is_not_found(error, "NoSuchBucket"):
            return None
        raise describe_client_error(
            error, endpoint=run.local, bucket=bucket, action="read", answer_within=answer_timeout(client)
        ) from None
    location = ObjectLocation(run.local.name, bucket, key)
    return SourceObject(location, int(head["ContentLength"]), head["ETag"].strip('"'))


def _given_reward_function(run: RunConfig, client: Any, given: str) -> SourceObject | LocalFile:
    """``--reward-function``: an ``s3://bucket/key`` object on the local endpoint, else a local file."""
    if given.startswith("s3://"):
        bucket, _, key = given[len("s3://") :].partition("/")
        if not bucket or not key or key.endswith("/"):
            raise ConfigError(f"--reward-function {given} is not an s3://BUCKET/KEY URL of a file; give the full key.")
        found = _head(client, run, bucket, key)
        if found is None:
            raise ConfigError(
                f"--reward-function {given}: there is no such object on the {run.local.describe()}; check the URL."
            )
        return found
    path = Path(given).expanduser()
    try:
        return LocalFile(given, path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(
            f"--reward-function {given}: there is no such file; give a reward function file or an s3://BUCKET/KEY URL."
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"--reward-function {given} is a directory; give the reward function file.") from None
    except OSError as error:
        raise ConfigError(
            f"--reward-function {given} cannot be read ({error.strerror or error}); check its permissions."
        ) from None


def _reward_function(
    run: RunConfig, client: Any, objects: dict[str, SourceObject], prefix: str
) -> SourceObject | LocalFile:
    if run.reward_function is not None:
        return _given_reward_function(run, client, run.reward_function)
    root = f"s3://{run.local_bucket}/{prefix}/"
    found = objects.get(f"{prefix}/reward_function.py")
    if found is not None:
        return found
    if run.prefix_override:
        raise ConfigError(
            f"The reward function is missing: nothing at {root}reward_function.py (with -p, DR_LOCAL_S3_REWARD_KEY "
            f"is not used: it holds the run's current training's); give the model's with "
            f"--reward-function PATH_OR_S3_URL."
        )
    fallback = _head(client, run, run.local_bucket, run.reward_key)
    if fallback is None:
        raise ModelError(
            f"The reward function is missing: nothing at {root}reward_function.py "
            f"nor at s3://{run.local_bucket}/{run.reward_key} (DR_LOCAL_S3_REWARD_KEY)."
        )
    return fallback


def inspect_model(run: RunConfig, client: Any, *, reward_function: bool = True) -> ModelInventory:
    """List ``run``'s model prefix once and check that everything an importable model needs is there;
    ``reward_function=False`` skips the reward function (car packages hold none)."""
    prefix = run.model_prefix.strip("/")
    root = f"s3://{run.local_bucket}/{prefix}/"
    objects = _list(client, run, prefix + "/", "the model prefix")
    if not objects:
        raise ModelError(f"No model found at {root}: the prefix is empty; check DR_LOCAL_S3_MODEL_PREFIX.")

    read: dict[tuple[str, str], bytes] = {}  # small files already read: planning and plugins read some twice

    def reader(obj: SourceObject) -> bytes:
        where = (obj.location.bucket, obj.location.key)
        if where in read:
            return read[where]
        try:
            body: bytes = client.get_object(Bucket=obj.location.bucket, Key=obj.location.key)["Body"].read()
        except Exception as error:
            raise describe_client_error(
                error,
                endpoint=run.local,
                bucket=obj.location.bucket,
                action="read",
                answer_within=answer_timeout(client),
            ) from None
        if len(body) <= KEEP_READ_LIMIT:
            read[where] = body
        return body

    def need(relative: str, what: str) -> SourceObject:
        obj = objects.get(f"{prefix}/{relative}")
        if obj is None:
            raise ModelError(f"The {what} is missing: nothing at {root}{relative}.")
        return obj

    model_files = {
        key[len(prefix) + len("/model/") :]: obj
        for key, obj in objects.items()
        if key.startswith(f"{prefix}/model/") and "/" not in key[len(prefix) + len("/model/") :]
    }
    index_obj = need("model/deepracer_checkpoints.json", "checkpoint index (written after the first evaluation)")
    index_url = f"{root}model/deepracer_checkpoints.json"
    index = CheckpointIndex.parse(reader(index_obj), index_url)

    metadata_obj = need("model/model_metadata.json", "model metadata")
    metadata_body = reader(metadata_obj)
    metadata = parse_model_metadata(metadata_body, f"{root}model/model_metadata.json")
    hyper = need("ip/hyperparameters.json", "hyperparameters file")

    reward = _reward_function(run, client, objects, prefix) if reward_function else None

    metrics_prefix = run.metrics_prefix.strip("/") + "/"
    if metrics_prefix.startswith(prefix + "/"):
        metrics = [obj for key, obj in objects.items() if key.startswith(metrics_prefix)]
    else:
        metrics = list(_list(client, run, metrics_prefix, "the metrics prefix").values())
    if not metrics:
        raise ModelError(
            f"The metrics are missing: no objects under s3://{run.local_bucket}/{metrics_prefix} "
            f"(DR_LOCAL_S3_METRICS_PREFIX)."
        )
    training_params = objects.get(f"{prefix}/training_params_1.yaml") or objects.get(f"{prefix}/training_params.yaml")
    return ModelInventory(
        run=run,
        objects=objects,
        model_files=model_files,
        checkpoints=group_checkpoints(model_files),
        index=index,
        index_url=index_url,
        reward_function=reward,
        model_metadata=metadata_obj,
        metadata=metadata,
        metadata_body=metadata_body,
        hyperparameters=hyper,
        metrics=sorted(metrics, key=lambda o: o.location.key),
        training_params=training_params,
        reader=reader,
    )


def parse_model_metadata(raw: bytes, url: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelError(
            f"{url} is not valid JSON ({error}); restore it from custom_files/model_metadata.json."
        ) from None
    if not isinstance(data, dict) or "action_space" not in data:
        raise ModelError(f"{url} has no action_space; restore it from custom_files/model_metadata.json.")
    return data
