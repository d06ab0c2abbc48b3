"""Archive packaging: the :class:`Packager` protocol, archive names, a streaming tar.gz builder, delivery.

Packagers are registered by plugins through ``drtransfer_register_packagers`` (``register(name,
packager, description)``); core builds one package per run with :func:`build_packages`, then
uploads them through the transfer engine (:func:`upload_packages`) and/or writes them into a local
directory (:func:`write_package`).

Archives are built in memory while their members stream in (an S3 GET body or a container's archive
stream is read in chunks straight into the gzip writer), so no temporary file ever touches the disk;
a car package is about the size of one frozen graph (~20 MiB for the shallow network).

Each packager checks its own format's rules (the car's live in the car plugin) before any byte is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from drtransfer.errors import ConfigError, DrTransferError, TransferError
from drtransfer.events import CarPackageBuilt, CheckpointSelected, Event
from drtransfer.operations import ModelPlan, ObjectLocation, PutBytes
from drtransfer.runconfig import RunConfig

if TYPE_CHECKING:
    from drtransfer.endpoints import Endpoint
    from drtransfer.engine import EngineSettings, TransferSubscriber
    from drtransfer.operations import ModelResult
    from drtransfer.plugins import PluginHost

# Packages that upload_packages wrote carry this Content-Type parameter; ``-w`` keeps objects that have
# it. A MIME parameter keeps the base type (application/gzip) for every client, and the engine writes
# Content-Type (it has no user metadata for generated objects).
PACKAGE_MARK = ("drtransfer-kind", "package")
_ARCHIVE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_NOT_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


# ---- archive names ---------------------------------------------------------------------------------


def sanitize_archive_name(raw: str) -> str:
    """``raw`` with every run of characters outside ``[A-Za-z0-9_-]`` (dots, slashes ...) made one ``-``."""
    return _NOT_NAME_CHARS.sub("-", raw).strip("-")


def resolve_archive_name(run: RunConfig, explicit: str | None) -> tuple[str, str | None]:
    """The archive name (without suffix) and a note when the default had to be changed.

    An explicit name must already be valid (refused otherwise). The default is the run's upload prefix
    (``DR_UPLOAD_S3_PREFIX``, or the model prefix when none is set), sanitised, the change reported.
    """
    if explicit is not None:
        if not _ARCHIVE_NAME.match(explicit):
            suggestion = sanitize_archive_name(explicit) or "model"
            raise ConfigError(
                f"The archive name {explicit!r} is not allowed: use only letters, digits, '_' and '-' "
                f"(no dot: the car cuts model names at the first dot), e.g. {suggestion!r}."
            )
        return explicit, None
    variable, raw = "DR_UPLOAD_S3_PREFIX", run.upload_prefix.strip("/")
    if not raw:
        variable, raw = "DR_LOCAL_S3_MODEL_PREFIX", run.model_prefix.strip("/")
    name = sanitize_archive_name(raw)
    if not name:
        raise ConfigError(
            f"{run.label}: cannot name the car archive after {variable}={raw!r}; "
            f"set {variable} to a name of letters, digits, '_' and '-'."
        )
    if name != raw:
        return name, f"archive named {name!r} instead of {raw!r}: the car accepts only [A-Za-z0-9_-] (no dots)"
    return name, None


# ---- streaming tar.gz ------------------------------------------------------------------------------


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class OpenedMember:
    """A member's stream while it is being read: its exact size and, when known, the MD5 to expect."""

    stream: Readable
    size: int
    md5: str | None = None


MemberOpener = Callable[[], AbstractContextManager[OpenedMember]]


@dataclass(frozen=True)
class MemberSource:
    """One file for an archive: its name inside, where it comes from (for messages), how to open it."""

    arcname: str
    origin: str
    opener: MemberOpener = field(repr=False)

    @classmethod
    def from_bytes(cls, arcname: str, data: bytes, origin: str) -> MemberSource:
        @contextlib.contextmanager
        def opener() -> Iterator[OpenedMember]:
            yield OpenedMember(io.BytesIO(data), len(data), hashlib.md5(data).hexdigest())

        return cls(arcname, origin, opener)


@dataclass(frozen=True)
class ArchiveMember:
    """A member as written: its name, size and MD5 (the car's ``checksum.txt`` is the .pb's MD5)."""

    name: str
    size: int
    md5: str
    origin: str


class _CountingReader:
    """Reads through to ``stream``, hashing and counting, so a short or corrupt stream is noticed."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self.md5 = hashlib.md5()
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._stream.read(size)
        self.md5.update(chunk)
        self.count += len(chunk)
        return chunk


def build_targz(
    members: Sequence[MemberSource], *, mtime: float | None = None
) -> tuple[bytes, tuple[ArchiveMember, ...]]:
    """A gzip-compressed ustar archive of ``members``, built in memory while each member streams in.

    Each member is read in chunks exactly once. A stream that breaks, ends early or whose MD5 differs from
    what its source announced is a :class:`TransferError` (nothing is returned).
    """
    stamp = int(time.time() if mtime is None else mtime)
    buffer = io.BytesIO()
    written: list[ArchiveMember] = []
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.USTAR_FORMAT) as tar:
        for member in members:
            with member.opener() as opened:
                info = tarfile.TarInfo(member.arcname)
                info.size, info.mode, info.mtime = opened.size, 0o644, stamp
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                reader = _CountingReader(opened.stream)
                try:
                    tar.addfile(info, reader)
                except DrTransferError:
                    raise
                except Exception as error:  # a short stream (tarfile's OSError) or a broken connection
                    raise TransferError(
                        f"Reading {member.origin} stopped after {reader.count} of {opened.size} bytes "
                        f"({type(error).__name__}: {error}); try again."
                    ) from None
                digest = reader.md5.hexdigest()
                if opened.md5 is not None and digest != opened.md5:
                    raise TransferError(
                        f"{member.origin} arrived corrupted (MD5 {digest}, expected {opened.md5}); try again."
                    )
                written.append(ArchiveMember(member.arcname, opened.size, digest, member.origin))
    return buffer.getvalue(), tuple(written)


# ---- packagers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackageRequest:
    """What to package for each run.

    source: where the model files come from; the packager lists what it supports (``s3``, ``container``).
    checkpoint: a checkpoint expression (``last``, ``best``, ``step:12`` ...); ``None`` = packager default.
    name: the archive name for a single run; ``None`` = derived from the run's upload prefix.
    """

    source: str = "s3"
    checkpoint: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Package:
    """One built archive (bytes in memory) and what went into it."""

    run: RunConfig
    format: str
    name: str
    suffix: str
    data: bytes = field(repr=False)
    members: tuple[ArchiveMember, ...]
    origin: str
    explanation: str
    checkpoint: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return self.name + self.suffix

    @property
    def size(self) -> int:
        return len(self.data)


class Packager(Protocol):
    """An archive format; plugins register an instance (``register(name, packager, description)``).

    sources: the ``PackageRequest.source`` values it supports, the default first.
    suffix: the archive file suffix (``.tar.gz``).
    build: make the package of one run; called from worker threads of the parent process, so it must
    create its own clients. Raise :class:`ModelError` for anything wrong with this run's model.

    A packager may also offer ``check_runs(runs, request)``, which :func:`build_packages` calls once
    before building anything: it raises :class:`ConfigError` for runs that cannot be packaged together
    (the container source refuses runs whose containers it cannot tell apart).
    """

    sources: tuple[str, ...]
    suffix: str

    def build(self, run: RunConfig, request: PackageRequest, host: PluginHost) -> Package: ...


def get_packager(host: PluginHost, name: str) -> Packager:
    """The registered packager ``name`` (a ConfigError lists the known ones)."""
    packager: Packager = host.packagers().get(name)
    return packager


@dataclass
class PackageOutcome:
    """One run's package, or why there is none, and where it went."""

    run: RunConfig
    package: Package | None = None
    error: DrTransferError | None = None
    locations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.package is not None and self.error is None


def build_packages(
    runs: Sequence[RunConfig],
    request: PackageRequest,
    packager: Packager,
    host: PluginHost,
    *,
    workers: int = 4,
    on_event: Callable[[Event], None] | None = None,
) -> list[PackageOutcome]:
    """Build every run's package (a few at once); one run's failure never stops the others.

    Refused before anything is built: a source the packager does not support, an explicit name
    for several runs, two runs whose archives would get the same name, or runs the packager's own
    ``check_runs`` refuses.
    """
    if request.source not in packager.sources:
        raise ConfigError(
            f"The package source {request.source!r} is not supported; choose one of {', '.join(packager.sources)}."
        )
    check_runs = getattr(packager, "check_runs", None)
    if callable(check_runs):
        check_runs(runs, request)
    if request.name is not None and len(runs) > 1:
        raise ConfigError(f"An archive name can be given for one run only, not for {len(runs)} runs.")
    names: dict[str, RunConfig] = {}
    for run in runs:
        name, _note = resolve_archive_name(run, request.name)
        if name in names:
            raise ConfigError(
                f"{names[name].label} and {run.label} would both produce {name}{packager.suffix}; "
                f"give them different DR_UPLOAD_S3_PREFIX values."
            )
        names[name] = run

    def one(run: RunConfig) -> PackageOutcome:
        try:
            return PackageOutcome(run, package=packager.build(run, request, host))
        except DrTransferError as error:
            return PackageOutcome(run, error=error)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(runs)))) as pool:
        outcomes = list(pool.map(one, runs))
    if on_event is not None:
        for outcome in outcomes:
            if outcome.package is not None and outcome.package.checkpoint is not None:
                on_event(
                    CheckpointSelected(
                        outcome.run.run_id,
                        outcome.package.checkpoint,
                        outcome.package.explanation,
                        experiment=outcome.run.experiment or "",
                    )
                )
    return outcomes


# ---- delivery --------------------------------------------------------------------------------------


def archive_location(package: Package, *, local_bucket: bool = False) -> ObjectLocation:
    """Where ``package`` is uploaded.

    Default (DRfC's ``dr-upload-car-zip``): ``s3://DR_UPLOAD_S3_BUCKET/DR_UPLOAD_S3_PREFIX/<name>.tar.gz``.
    ``local_bucket`` (``-L``, as DRfC PR #213): next to the model it came from,
    ``s3://DR_LOCAL_S3_BUCKET/DR_LOCAL_S3_MODEL_PREFIX/<name>.tar.gz``.
    """
    run = package.run
    if local_bucket:
        return ObjectLocation(run.local.name, run.local_bucket, _key(run.model_prefix, package.filename))
    if run.upload is None or not run.upload_bucket:
        raise ConfigError(
            f"No upload bucket is defined for {run.label}; set DR_UPLOAD_S3_BUCKET, "
            f"or use -L (local bucket) or --output DIR."
        )
    return ObjectLocation(run.upload.name, run.upload_bucket, _key(run.upload_prefix, package.filename))


def _key(prefix: str, filename: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{filename}" if prefix else filename


def upload_packages(
    packages: Sequence[Package],
    *,
    local_bucket: bool = False,
    settings: EngineSettings | None = None,
    subscribers: Sequence[TransferSubscriber] = (),
) -> list[ModelResult]:
    """Upload each package as one PutBytes through the engine; one result per package, in order (each
    keyed by its run's ``key``)."""
    from drtransfer.engine import run_transfer

    endpoints: dict[str, Endpoint] = {}
    plans: list[ModelPlan] = []
    for package in packages:
        where = archive_location(package, local_bucket=local_bucket)
        endpoint = package.run.local if local_bucket else package.run.upload
        assert endpoint is not None  # archive_location checked it
        if endpoints.setdefault(endpoint.name, endpoint) != endpoint:
            raise ConfigError(
                f"Two different endpoints are both named {endpoint.name!r}; load the runs through "
                f"drtransfer.config so each endpoint gets its own name."
            )
        target = ObjectLocation(endpoint.name, where.bucket, where.key)
        # The archive's own key is the plan's root: the engine's sweep of multipart uploads left by a
        # crash stays off the rest of the prefix, which may hold an uploaded model.
        plan = ModelPlan(model_id=package.run.key, target_root=target)
        plan.add(PutBytes(target, package.data, content_type=package_content_type(package)))
        plans.append(plan)
    return run_transfer(plans, endpoints, settings, subscribers)


def package_content_type(package: Package) -> str:
    """The Content-Type :func:`upload_packages` writes: the archive's type with drtransfer's mark."""
    base = "application/gzip" if package.suffix.endswith(".gz") else "application/octet-stream"
    return f"{base}; {PACKAGE_MARK[0]}={PACKAGE_MARK[1]}"


def is_drtransfer_package(content_type: str | None) -> bool:
    """Whether an object's Content-Type marks it as a package that :func:`upload_packages` wrote."""
    _, *parameters = (content_type or "").split(";")
    name, value = PACKAGE_MARK
    for parameter in parameters:
        key, _, given = parameter.partition("=")
        if key.strip().lower() == name and given.strip().strip('"') == value:
            return True
    return False


def write_package(package: Package, directory: Path) -> Path:
    """Write ``directory/<name>.tar.gz`` atomically (a temporary name in the same directory, then rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / package.filename
    temporary = directory / f".{package.filename}.{os.getpid()}.part"
    try:
        with temporary.open("wb") as handle:
            handle.write(package.data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise ConfigError(f"Cannot write {final}: {error.strerror or error}; check the --output directory.") from None
    return final


def built_event(package: Package, location: str) -> CarPackageBuilt:
    run = package.run
    return CarPackageBuilt(run.run_id, package.filename, package.size, location, experiment=run.experiment or "")


__all__ = [
    "PACKAGE_MARK",
    "ArchiveMember",
    "MemberSource",
    "OpenedMember",
    "Package",
    "PackageOutcome",
    "PackageRequest",
    "Packager",
    "archive_location",
    "build_packages",
    "build_targz",
    "built_event",
    "get_packager",
    "is_drtransfer_package",
    "package_content_type",
    "resolve_archive_name",
    "sanitize_archive_name",
    "upload_packages",
    "write_package",
]
