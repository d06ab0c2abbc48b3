"""The steps of an upload, which :func:`drtransfer.jobs.upload` runs in order (with locks, the
confirmation, events, ``-1`` and imports around them):

1. :func:`check_targets` — every target bucket reachable with its credentials (configuration errors,
   exit 2, before anything is written); its listing of each target prefix goes into the plan, so the
   engine does not list it again;
2. :func:`prepare_uploads` — per run: inspect the model, select the checkpoint through the plugin host,
   plan, let plugins extend the plan, add ``-w`` deletions. A model that cannot be prepared is reported
   failed; the others go on. The runs' listings are read in parallel threads beforehand;
3. :func:`execute` — run every prepared plan through the engine at once.

``-w`` deletes what the plan does not write under each target prefix, except the packages that
``drtransfer car-zip`` uploaded there (:func:`own_packages`).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from drtransfer.checkpoints import Selection
from drtransfer.endpoints import PREFLIGHT_SETTINGS, Endpoint, list_pages, make_s3_client
from drtransfer.engine import EngineSettings, TransferSubscriber, run_transfer
from drtransfer.engine.checksums import clean_etag
from drtransfer.engine.executor import Executor
from drtransfer.errors import ConfigError, DrTransferError
from drtransfer.inventory import ModelInventory, inspect_model
from drtransfer.operations import ModelPlan, ModelResult, ObjectLocation
from drtransfer.packaging import is_drtransfer_package
from drtransfer.plan import add_wipe, plan_model, training_endpoint_url
from drtransfer.plugins import PluginHost
from drtransfer.runconfig import RunConfig
from drtransfer.s3errors import answer_timeout, describe_client_error, error_code, is_not_found

ClientFactory = Callable[[Endpoint], Any]


@dataclass
class PreparedModel:
    """One run after planning: either a plan, or the sentence saying why there is none."""

    run: RunConfig
    inventory: ModelInventory | None = None
    selection: Selection | None = None
    plan: ModelPlan | None = None
    error: str | None = None
    kept: list[str] = field(default_factory=list)  # -w: target keys of car packages left in place

    @property
    def ok(self) -> bool:
        return self.plan is not None


@dataclass
class UploadOutcome:
    prepared: PreparedModel
    result: ModelResult
    extra: dict[str, Any] = field(default_factory=dict)  # import results, increments ...


def target_endpoint(run: RunConfig) -> Endpoint:
    if run.upload is None:
        raise ConfigError(f"{run.label}: no upload endpoint is configured.")
    return run.upload


def endpoint_map(runs: Sequence[RunConfig]) -> dict[str, Endpoint]:
    endpoints: dict[str, Endpoint] = {}
    for run in runs:
        endpoints[run.local.name] = run.local
        if run.upload is not None:
            endpoints[run.upload.name] = run.upload
    return endpoints


def default_client_factory(endpoint: Endpoint) -> Any:
    # Checks and planning happen in the parent before anything is written: fail within seconds. One
    # client per endpoint (make_s3_client shares it): the runs' inspections use it from several threads.
    return make_s3_client(endpoint, PREFLIGHT_SETTINGS)


TargetListing = tuple[tuple[str, int, str], ...]  # (key, size, ETag) of every object under a target prefix
Listings = dict[tuple[str, str, str], TargetListing | None]  # (endpoint, bucket, prefix) -> listing; None: too many
LISTING_LIMIT = 10_000  # above this many keys under a prefix the engine HEADs each target instead


def listing_key(run: RunConfig) -> tuple[str, str, str]:
    return target_endpoint(run).name, run.upload_bucket, run.upload_prefix.strip("/") + "/"


def check_targets(
    runs: Sequence[RunConfig], client_for: ClientFactory = default_client_factory, *, probe_write: bool = True
) -> Listings:
    """Fail with one sentence when a target bucket is missing, unreachable, refuses the credentials, or
    the credentials may not list or write there (``probe_write=False``, for dry runs, skips the write
    check: it is the only one that makes a write request). Returns each target prefix's listing (the
    list check), which planning hands to the engine: take the targets' locks first."""
    checked: set[tuple[str, str]] = set()
    firsts = []
    for run in runs:
        bucket = (target_endpoint(run).name, run.upload_bucket)
        firsts.append(bucket not in checked)
        checked.add(bucket)

    def check(run: RunConfig, first: bool) -> TargetListing | None:
        endpoint = target_endpoint(run)
        client = client_for(endpoint)
        # Each prefix is listed; the write check (2 requests) is made once per bucket, under the first
        # run's prefix: the models of one command share their target's credentials and policy.
        return _check_permissions(run, endpoint, client, probe_write=probe_write and first, explain=first)

    # The runs are checked in parallel threads; the first failure in the runs' order is raised, as a
    # sequential check would (a bucket's first run checks the bucket and comes before the others).
    answers = in_threads(lambda item: _outcome(check, *item), list(zip(runs, firsts, strict=True)))
    listings: Listings = {}
    for run, (listing, error) in zip(runs, answers, strict=True):
        if error is not None:
            raise error
        listings[listing_key(run)] = listing
    return listings


T = TypeVar("T")
R = TypeVar("R")


def _outcome(function: Callable[..., R], *args: Any) -> tuple[R | None, DrTransferError | None]:
    try:
        return function(*args), None
    except DrTransferError as error:
        return None, error


def in_threads(function: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``function`` of every item, in up to :data:`INSPECT_THREADS` threads, in the items' order."""
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(INSPECT_THREADS, len(items)), thread_name_prefix="inspect") as pool:
        return list(pool.map(function, items))


def _check_bucket(run: RunConfig, endpoint: Endpoint, client: Any) -> None:
    try:
        client.head_bucket(Bucket=run.upload_bucket)
    except Exception as error:
        # HeadBucket answers without a body: a 404 means no bucket, a 403 is either refused
        # credentials or a missing permission; a listing's error code tells which.
        code = error_code(error)
        if is_not_found(error):
            raise ConfigError(
                f"The upload bucket {run.upload_bucket!r} does not exist on the {endpoint.describe()}; "
                f"create it or fix DR_UPLOAD_S3_BUCKET."
            ) from None
        if code in ("403", "Forbidden"):
            try:
                client.list_objects_v2(Bucket=run.upload_bucket, MaxKeys=1)
            except Exception as detail:
                raise _denied("list", detail, run, endpoint, client) from None
        raise describe_client_error(
            error, endpoint=endpoint, bucket=run.upload_bucket, action="write", answer_within=answer_timeout(client)
        ) from None


PERMISSION_NAMES = {
    "list": "List permission (s3:ListBucket)",
    "write": "Write permission (s3:PutObject)",
}


def _denied(kind: str, error: Exception, run: RunConfig, endpoint: Endpoint, client: Any) -> DrTransferError:
    """The sentence for a refused ``kind`` ("list" or "write") request on the run's target."""
    bucket = run.upload_bucket
    if error_code(error) not in ("AccessDenied", "403", "Forbidden"):
        return describe_client_error(
            error, endpoint=endpoint, bucket=bucket, action=f"{kind} objects", answer_within=answer_timeout(client)
        )
    who = f" (profile {endpoint.profile})" if endpoint.profile else ""
    return ConfigError(
        f"Access denied: the credentials{who} lack the {PERMISSION_NAMES[kind]} on bucket {bucket!r} "
        f"(prefix {run.upload_prefix.strip('/')}/) of the {endpoint.describe()}; grant it and run the command again."
    )


def _check_permissions(
    run: RunConfig, endpoint: Endpoint, client: Any, *, probe_write: bool, explain: bool
) -> TargetListing | None:
    """The engine needs each target prefix's listing (to skip what is there) and writes under it:
    check both before any byte moves; the listing is returned (None above :data:`LISTING_LIMIT`). The
    write check starts a multipart upload under the prefix and aborts it at once, so no object is ever
    written (an abort that fails is swept by the next run, as the upload lies under the target prefix).

    A listing that answers shows the bucket is there and readable, so no HeadBucket is sent before it.
    Only a listing the server refused (``explain``: a bucket's first run) is followed by one: its 404
    or 403 tells a missing bucket from refused credentials or a missing permission."""
    prefix = run.upload_prefix.strip("/") + "/"
    bucket = run.upload_bucket
    try:
        listing = _list_prefix(client, bucket, prefix)
    except Exception as error:
        if explain and error_code(error):  # an answer, not a broken connection
            _check_bucket(run, endpoint, client)  # raises the bucket's own sentence when that is what is wrong
        raise _denied("list", error, run, endpoint, client) from None
    if probe_write:
        _check_write(run, endpoint, client, prefix)
    return listing


def _list_prefix(client: Any, bucket: str, prefix: str) -> TargetListing | None:
    """Every (key, size, ETag) under ``prefix``, page by page; None past :data:`LISTING_LIMIT` keys."""
    found: list[tuple[str, int, str]] = []
    for page in list_pages(client.list_objects_v2, Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found.append((item["Key"], int(item["Size"]), clean_etag(item.get("ETag"))))
        if len(found) > LISTING_LIMIT:
            return None
    return tuple(found)


def _check_write(run: RunConfig, endpoint: Endpoint, client: Any, prefix: str) -> None:
    bucket = run.upload_bucket
    key = f"{prefix}.drtransfer-write-check-{uuid.uuid4().hex[:12]}"
    try:
        upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    except Exception as error:
        raise _denied("write", error, run, endpoint, client) from None
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception as error:
        within = answer_timeout(client)
        raise describe_client_error(
            error, endpoint=endpoint, bucket=bucket, action="abort multipart uploads", answer_within=within
        ) from None


def list_target(run: RunConfig, client: Any) -> dict[str, int]:
    """Every object under the run's target prefix (with the trailing slash: never a sibling prefix)."""
    prefix = run.upload_prefix.strip("/") + "/"
    out: dict[str, int] = {}
    try:
        for page in list_pages(client.list_objects_v2, Bucket=run.upload_bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                out[item["Key"]] = int(item["Size"])
    except Exception as error:
        raise describe_client_error(
            error,
            endpoint=target_endpoint(run),
            bucket=run.upload_bucket,
            action="list",
            answer_within=answer_timeout(client),
        ) from None
    return out


def own_packages(run: RunConfig, client: Any, keys: Iterable[str], suffixes: Sequence[str]) -> list[str]:
    """The keys among ``keys`` that drtransfer's packaging uploaded (``-w`` keeps them).

    A listing does not show how an object was written, so each key with a registered packager's suffix
    (``.tar.gz`` for the car) is HEADed for the
    Content-Type that :func:`drtransfer.packaging.upload_packages` sets; only the few objects ``-w``
    would otherwise delete are asked about.
    """
    found = []
    for key in sorted(keys):
        if not key.endswith(tuple(suffixes)):
            continue
        try:
            head = client.head_object(Bucket=run.upload_bucket, Key=key)
        except Exception as error:
            if is_not_found(error):  # gone since the listing
                continue
            raise describe_client_error(
                error,
                endpoint=target_endpoint(run),
                bucket=run.upload_bucket,
                action="read objects",
                answer_within=answer_timeout(client),
            ) from None
        if is_drtransfer_package(head.get("ContentType")):
            found.append(key)
    return found


def check_wipe_roots(runs: Sequence[RunConfig]) -> None:
    """``-w`` deletes whatever the plan does not write under each target prefix: refuse an empty prefix,
    and a prefix holding any run's training data or metrics or another run's target, which it would
    delete."""

    def place(endpoint: Endpoint | None, bucket: str, prefix: str) -> tuple[str, str, str]:
        where = (endpoint.url or f"aws:{endpoint.region}") if endpoint else ""
        return where, bucket, prefix.strip("/") + "/"

    for run in runs:
        if not run.upload_prefix.strip("/"):
            raise ConfigError(f"{run.label}: refusing -w with an empty upload prefix; set DR_UPLOAD_S3_PREFIX.")
        root = place(target_endpoint(run), run.upload_bucket, run.upload_prefix)
        for other in runs:
            held = [
                (place(other.local, other.local_bucket, other.model_prefix), "trains in"),
                (place(other.local, other.local_bucket, other.metrics_prefix), "keeps its metrics in"),
            ]
            if other is not run:
                held.append((place(other.upload, other.upload_bucket, other.upload_prefix), "uploads to"))
            for (where, bucket, prefix), what in held:
                if (where, bucket) == root[:2] and prefix.startswith(root[2]):
                    raise ConfigError(
                        f"{run.label}: refusing -w: {other.label} {what} s3://{bucket}/{prefix}, inside the target "
                        f"s3://{bucket}/{root[2]}, and -w would delete it; give the run its own DR_UPLOAD_S3_PREFIX."
                    )


@dataclass
class _Inspection:
    """What one run's listings gave (or the error they raised), read ahead in a thread; planning raises
    the error at the step that would have read it, so messages and their order stay those of a
    sequential run."""

    inventory: ModelInventory | None = None
    existing: dict[str, int] | None = None  # -w: the objects under the target prefix
    error: DrTransferError | None = None
    target_error: DrTransferError | None = None

    def result(self) -> ModelInventory:
        if self.error is not None:
            raise self.error
        assert self.inventory is not None
        return self.inventory

    def target(self) -> dict[str, int]:
        if self.target_error is not None:
            raise self.target_error
        assert self.existing is not None
        return self.existing


INSPECT_THREADS = 8  # listings wait on the network: 8 runs are inspected in the time of about one


def _inspect(run: RunConfig, client_for: ClientFactory, wipe: bool, listings: Listings) -> _Inspection:
    found = _Inspection()
    try:
        found.inventory = inspect_model(run, client_for(run.local))
    except DrTransferError as error:
        found.error = error
        return found
    params = found.inventory.training_params
    if params is not None:  # planning reads it: read it here, in parallel, and the inventory keeps it
        with contextlib.suppress(DrTransferError):  # planning reads it again and reports it in its place
            found.inventory.read(params)
    known = listings.get(listing_key(run)) if listings else None
    if wipe and known is not None:
        found.existing = {key: size for key, size, _etag in known}
    elif wipe:
        try:
            found.existing = list_target(run, client_for(target_endpoint(run)))
        except DrTransferError as error:
            found.target_error = error
    return found


def inspect_runs(
    runs: Sequence[RunConfig], client_for: ClientFactory, *, wipe: bool, listings: Listings | None = None
) -> list[_Inspection]:
    """Every run's model listing (and, for ``-w``, its target listing unless ``listings`` has it), in
    threads, in the runs' order."""
    known = listings or {}
    return in_threads(lambda run: _inspect(run, client_for, wipe, known), runs)


def prepare_uploads(
    runs: Sequence[RunConfig],
    host: PluginHost,
    *,
    checkpoint: str = "last",
    wipe: bool = False,
    client_for: ClientFactory = default_client_factory,
    listings: Listings | None = None,
) -> list[PreparedModel]:
    """Inspect, select and plan every run. ConfigErrors (unknown expression, unreachable endpoint,
    refused credentials, missing bucket, empty wipe prefix) propagate; model errors stay per model.
    The listings are read in parallel (:func:`inspect_runs`); plugins are called one run at a time.
    ``listings`` (from :func:`check_targets`, under the targets' locks) go into the plans, so the
    engine does not list the targets again."""
    if wipe:
        check_wipe_roots(runs)
    inspections = inspect_runs(runs, client_for, wipe=wipe, listings=listings)
    prepared = []
    for run, inspection in zip(runs, inspections, strict=True):
        item = PreparedModel(run)
        prepared.append(item)
        try:
            item.inventory = inspection.result()
            item.selection = host.select_checkpoint(checkpoint, item.inventory, run)
            target = ObjectLocation(target_endpoint(run).name, run.upload_bucket, run.upload_prefix.strip("/"))
            plan = plan_model(item.inventory, item.selection, target, endpoint_url=training_endpoint_url(run))
            host.extend_plan(plan, item.inventory, run)
            if wipe:
                client = client_for(target_endpoint(run))
                existing = inspection.target()
                planned = plan.target_keys()
                unplanned = (key for key in existing if key not in planned)
                item.kept = own_packages(run, client, unplanned, [p.value.suffix for p in host.packagers()])
                add_wipe(plan, existing, keep=item.kept)
            known = listings.get(listing_key(run)) if listings else None
            if known is not None and plan.target_root == ObjectLocation(*listing_key(run)):
                plan.target_listing = known
            item.plan = plan
        except ConfigError:
            raise
        except DrTransferError as error:
            item.error = str(error)
    return prepared


@contextlib.contextmanager
def workers_started_early(executor: Executor, runs: Sequence[RunConfig], settings: EngineSettings) -> Iterator[None]:
    """Start ``executor``'s workers now, for every run's endpoints, if it can (the local executor): they
    get ready while the parent inspects and plans, and :func:`execute` then runs on them. Workers nobody
    ran are stopped when the block ends. Start them after the parent's first S3 client: a forked worker
    then inherits botocore's parsed S3 model instead of parsing it again."""
    start_early, release_early = getattr(executor, "start_early", None), getattr(executor, "release_early", None)
    if start_early is None or release_early is None:
        yield
        return
    start_early(endpoint_map(runs), settings)
    try:
        yield
    finally:
        release_early()


def execute(
    prepared: Sequence[PreparedModel],
    settings: EngineSettings,
    subscribers: Sequence[TransferSubscriber] = (),
    executor: Executor | None = None,
) -> list[UploadOutcome]:
    """Run every ready plan at once (on ``executor``; None: the local one); models that failed
    preparation get a failed result."""
    ready = [p for p in prepared if p.plan is not None]
    plans = [p.plan for p in ready if p.plan is not None]
    endpoints = endpoint_map([p.run for p in ready])
    results = run_transfer(plans, endpoints, settings, subscribers, executor) if plans else []
    by_model = {id(p): r for p, r in zip(ready, results, strict=True)}
    outcomes = []
    for item in prepared:
        result = by_model.get(id(item)) or ModelResult(item.run.key, "failed", error=item.error, seconds=0.0)
        outcomes.append(UploadOutcome(item, result))
    return outcomes
