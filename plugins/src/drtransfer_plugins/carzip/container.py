"""The car package from the run's running SageMaker container (DRfC's original ``dr-upload-car-zip``).

Finding the container: SageMaker local mode, started inside DRfC's
``rl_coach`` container, names the training container ``<10 random>-algo-1-<5 random>`` (docker-compose
v1: ``<project>_algo-1-<random>_1``) and gives it the environment ``RUN_ID=<DR_RUN_ID>`` (DRfC's
``start.py``) and ``TRAINING_JOB_NAME=<DR_LOCAL_S3_MODEL_PREFIX>`` (the job is named after the prefix).
Every *running* container with such a name is a candidate; it belongs to a run when

- its ``RUN_ID`` equals the run's ``DR_RUN_ID``, and
- its ``TRAINING_JOB_NAME`` equals the run's model prefix.

When the environment lacks one of them, the compose file named by the container's
``com.docker.compose.project.config_files`` label (under ``/tmp/sagemaker``, which DRfC shares with
the host) is read instead, as DRfC's ``dr-find-sagemaker`` does: it must contain ``RUN_ID=<id>`` and
the model prefix, matched as whole tokens (so ``rl-1`` does not match ``rl-10``). Which container
``docker ps`` lists last never matters. No candidate, or more than one, is an error naming what was
found.

Reading: ``/opt/ml/model/model_metadata.json`` and ``/opt/ml/model/agent/model.pb`` through the
Docker SDK's archive API (``container.get_archive``; no ``docker`` command), each a tar stream read in
chunks straight into the car archive. ``agent/model.pb`` is the best checkpoint simapp knew at its
last save.
"""

from __future__ import annotations

import contextlib
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drtransfer.errors import ConfigError, ModelError, TransferError
from drtransfer.inventory import parse_model_metadata
from drtransfer.packaging import (
    MemberSource,
    OpenedMember,
    Package,
    PackageRequest,
    build_targz,
    resolve_archive_name,
)
from drtransfer_plugins.carzip.rules import (
    CAR_FORMAT,
    CAR_METADATA_MEMBER,
    CAR_MODEL_MEMBER,
    CAR_SUFFIX,
    check_car_package,
)

if TYPE_CHECKING:
    from drtransfer.runconfig import RunConfig

MODEL_DIR = "/opt/ml/model"
SAGEMAKER_NAME = re.compile(r"^(?P<project>[A-Za-z0-9]+?)[-_](?P<service>algo-\d+-[a-z0-9]+)(?:_\d+)?$")
COMPOSE_FILES_LABEL = "com.docker.compose.project.config_files"
_MAX_COMPOSE_BYTES = 1024 * 1024
_MAX_METADATA_BYTES = 1024 * 1024
_TOKEN_EDGE = r"A-Za-z0-9_.\-"  # characters that continue a name: a match must not touch them


@dataclass(frozen=True)
class SageMakerContainer:
    """What the Docker SDK shows of one running SageMaker training container."""

    name: str
    run_id: str | None
    job_name: str | None
    compose_text: str | None
    handle: Any = None  # the docker SDK Container

    def belongs_to(self, run: RunConfig) -> bool:
        prefix = run.model_prefix.strip("/")
        if self.run_id is not None:
            run_ok = self.run_id == run.run_id
        else:
            run_ok = self.compose_text is not None and _has_token(self.compose_text, f"RUN_ID={run.run_id}")
        if self.job_name is not None:
            prefix_ok = self.job_name.strip("/") == prefix
        else:
            prefix_ok = self.compose_text is not None and _has_token(self.compose_text, prefix)
        return run_ok and prefix_ok

    def describe(self) -> str:
        facts = [
            f"RUN_ID={self.run_id if self.run_id is not None else '?'}",
            f"TRAINING_JOB_NAME={self.job_name if self.job_name is not None else '?'}",
        ]
        if self.compose_text is not None and (self.run_id is None or self.job_name is None):
            facts.append("compose file read")
        return f"{self.name} ({', '.join(facts)})"


def _has_token(text: str, token: str) -> bool:
    return re.search(rf"(?<![{_TOKEN_EDGE}]){re.escape(token)}(?![{_TOKEN_EDGE}])", text) is not None


def _environment(attrs: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in (attrs.get("Config") or {}).get("Env") or []:
        key, _, value = str(item).partition("=")
        env[key] = value
    return env


def _compose_text(labels: dict[str, str]) -> str | None:
    """The compose files the container was created from, when this host can read them."""
    texts = []
    for raw in labels.get(COMPOSE_FILES_LABEL, "").split(","):
        path = Path(raw.strip())
        if not raw.strip():
            continue
        with contextlib.suppress(OSError):
            if path.is_file() and path.stat().st_size <= _MAX_COMPOSE_BYTES:
                texts.append(path.read_text(errors="replace"))
    return "\n".join(texts) if texts else None


def list_sagemaker_containers(client: Any) -> list[SageMakerContainer]:
    """Every running container named like a SageMaker local-mode training container."""
    found = []
    for container in client.containers.list(ignore_removed=True):
        name = str(container.name).lstrip("/")
        if not SAGEMAKER_NAME.match(name):
            continue
        attrs = container.attrs
        env = _environment(attrs)
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        compose = _compose_text(labels) if "RUN_ID" not in env or "TRAINING_JOB_NAME" not in env else None
        found.append(SageMakerContainer(name, env.get("RUN_ID"), env.get("TRAINING_JOB_NAME"), compose, container))
    return sorted(found, key=lambda c: c.name)


def find_run_container(candidates: list[SageMakerContainer], run: RunConfig) -> SageMakerContainer:
    """The one candidate that belongs to ``run``; otherwise a ModelError naming what was found."""
    hint = "or package from S3 with --from s3"
    matches = [c for c in candidates if c.belongs_to(run)]
    if len(matches) == 1:
        return matches[0]
    wanted = f"RUN_ID={run.run_id} and TRAINING_JOB_NAME={run.model_prefix.strip('/')}"
    if not candidates:
        raise ModelError(
            f"No SageMaker training container is running for {run.label} (none named like "
            f"<random>-algo-1-<random> at all); start its training, {hint}."
        )
    if not matches:
        raise ModelError(
            f"No running SageMaker container belongs to {run.label} (wanted {wanted}); found "
            f"{'; '.join(c.describe() for c in candidates)}; start its training, {hint}."
        )
    raise ModelError(
        f"{len(matches)} running SageMaker containers match {run.label} ({wanted}): "
        f"{'; '.join(c.describe() for c in matches)}; stop the stale one(s) with docker stop NAME, {hint}."
    )


class _ChunkReader:
    """A file-like ``read(n)`` over an iterator of byte chunks (the SDK's archive stream)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = bytearray()

    def read(self, size: int = -1, /) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


def _container_file_opener(container: SageMakerContainer, path: str) -> Any:
    import docker.errors

    @contextlib.contextmanager
    def opener() -> Iterator[OpenedMember]:
        where = f"{path} in container {container.name}"
        try:
            chunks, _stat = container.handle.get_archive(path)
        except docker.errors.NotFound:
            raise ModelError(
                f"There is no {where} yet (training has not saved a model there); wait for the first "
                f"checkpoint, or package from S3 with --from s3."
            ) from None
        except docker.errors.DockerException as error:
            raise TransferError(f"Reading {where} failed: {error}; try again.") from None
        try:
            # The archive API answers with a tar stream holding the one file; read it as a stream.
            with tarfile.open(fileobj=_ChunkReader(chunks), mode="r|") as tar:  # type: ignore[call-overload]
                member = next(iter(tar), None)
                stream = tar.extractfile(member) if member is not None and member.isfile() else None
                if member is None or stream is None:
                    raise ModelError(f"{where} is not a regular file; check the container's {MODEL_DIR}.")
                yield OpenedMember(stream, member.size)
        except (tarfile.TarError, docker.errors.DockerException) as error:
            raise TransferError(f"Reading {where} failed: {error}; try again.") from None
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    return opener


def _read_small(opener: Any, limit: int, what: str) -> bytes:
    with opener() as opened:
        if opened.size > limit:
            raise ModelError(f"{what} is {opened.size} bytes, larger than any model metadata; check the container.")
        data: bytes = opened.stream.read(opened.size)
        return data


def docker_client() -> Any:
    """A Docker SDK client from the environment (``DOCKER_HOST`` or the local socket)."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as error:
        raise ConfigError(
            f"Cannot reach the Docker Engine ({error}); start Docker or set DOCKER_HOST, "
            f"or package from S3 with --from s3."
        ) from None
    return client


def build_from_container(run: RunConfig, request: PackageRequest, client: Any = None) -> Package:
    """The car package of ``run`` read from its running SageMaker container."""
    import docker.errors

    name, note = resolve_archive_name(run, request.name)
    own_client = client is None
    client = docker_client() if client is None else client
    try:
        try:
            candidates = list_sagemaker_containers(client)
        except docker.errors.DockerException as error:
            raise ConfigError(f"Cannot list containers on the Docker Engine ({error}); check Docker.") from None
        container = find_run_container(candidates, run)
        metadata_path = f"{MODEL_DIR}/{CAR_METADATA_MEMBER}"
        metadata_origin = f"container {container.name}:{metadata_path}"
        metadata_bytes = _read_small(
            _container_file_opener(container, metadata_path), _MAX_METADATA_BYTES, metadata_origin
        )
        metadata = parse_model_metadata(metadata_bytes, metadata_origin)
        pb_path = f"{MODEL_DIR}/{CAR_MODEL_MEMBER}"
        members = [
            MemberSource(
                CAR_MODEL_MEMBER, f"container {container.name}:{pb_path}", _container_file_opener(container, pb_path)
            ),
            MemberSource.from_bytes(CAR_METADATA_MEMBER, metadata_bytes, metadata_origin),
        ]
        check_car_package(name, [m.arcname for m in members], metadata, run.label)
        data, written = build_targz(members)
    finally:
        if own_client:
            client.close()
    return Package(
        run=run,
        format=CAR_FORMAT,
        name=name,
        suffix=CAR_SUFFIX,
        data=data,
        members=written,
        origin=f"container {container.name}",
        explanation=f"the model in container {container.name} (the best checkpoint known at its last save)",
        checkpoint=None,
        notes=(note,) if note else (),
    )
