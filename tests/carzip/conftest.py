"""Fixtures for the car-packaging tests: runs on the session SeaweedFS servers, archive readers, and a
real Docker Engine with SageMaker-like containers built from a busybox root filesystem.

The Docker tests never skip: ``tests/infra/ensure-docker.sh`` (run by ``./dev test``) installs and
starts ``dockerd``; when no engine answers, the ``docker_client`` fixture fails the test.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from drtransfer.locals3 import SeaweedServer
from drtransfer.runconfig import RunConfig

FIXTURE_METADATA = (
    Path(__file__).resolve().parents[2]
    / "core"
    / "src"
    / "drtransfer"
    / "demo_data"
    / "drfc-sample-training"
    / "model"
    / "model_metadata.json"
)


def make_run(local: SeaweedServer, bucket: str, prefix: str, *, run_id: str = "0", **changes: Any) -> RunConfig:
    values: dict[str, Any] = {
        "run_id": run_id,
        "local": local.endpoint("local"),
        "local_bucket": bucket,
        "model_prefix": prefix,
        "upload": None,
        "upload_bucket": "",
        "upload_prefix": f"{prefix}-1",
        "reward_key": "custom_files/reward_function.py",
        "metrics_prefix": f"{prefix}/metrics",
        "region": "us-east-1",
    }
    values.update(changes)
    return RunConfig(**values)


def read_archive(data: bytes) -> dict[str, bytes]:
    """Every member of a tar.gz with its bytes, in archive order; fails on anything but regular files."""
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            assert member.isfile(), f"{member.name} is not a regular file"
            handle = tar.extractfile(member)
            assert handle is not None
            out[member.name] = handle.read()
    return out


# ---- Docker ---------------------------------------------------------------------------------------


@dataclass
class DockerReport:
    """What the Docker tests did, printed in the terminal summary so CI's log shows they ran."""

    server: str = ""
    tests: list[str] = field(default_factory=list)
    containers: int = 0


_REPORT = DockerReport()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _REPORT.server:
        terminalreporter.write_sep("-", "car packaging from containers")
        terminalreporter.write_line(
            f"{len(_REPORT.tests)} docker test(s) ran against {_REPORT.server}, "
            f"starting {_REPORT.containers} container(s)"
        )


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    import docker

    try:
        client = docker.from_env()
        version = client.version()
    except docker.errors.DockerException as error:
        pytest.fail(
            f"No Docker Engine answers ({error}); run tests/infra/ensure-docker.sh (as root) before the tests.",
            pytrace=False,
        )
    _REPORT.server = f"Docker Engine {version.get('Version', '?')} (API {version.get('ApiVersion', '?')})"
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _record_docker_test(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("docker") is not None:
        _REPORT.tests.append(request.node.nodeid)


@pytest.fixture(scope="session")
def sagemaker_image(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An image made with ``docker import`` of a busybox root filesystem holding a SageMaker-like
    ``/opt/ml/model`` (``agent/model.pb`` and ``model_metadata.json``)."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail("busybox is missing; run tests/infra/ensure-docker.sh (installs busybox-static).", pytrace=False)
    root = tmp_path_factory.mktemp("rootfs")
    (root / "bin").mkdir()
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in ("sh", "sleep"):
        (root / "bin" / applet).symlink_to("busybox")
    model = root / "opt" / "ml" / "model"
    (model / "agent").mkdir(parents=True)
    (model / "agent" / "model.pb").write_bytes(b"image default graph")
    shutil.copy2(FIXTURE_METADATA, model / "model_metadata.json")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(root, arcname=".")
    tag = f"drtransfer-test-sagemaker:{uuid.uuid4().hex[:10]}"
    repository, _, version = tag.partition(":")
    docker_client.api.import_image_from_data(buffer.getvalue(), repository=repository, tag=version)
    yield tag
    docker_client.images.remove(tag, force=True)


@dataclass
class FakeTraining:
    """A running container named and configured like one run's SageMaker training container."""

    name: str
    pb: bytes
    metadata: bytes
    container: Any


class SageMakerContainers:
    """Starts SageMaker-like containers; every one is removed at the end of the test."""

    def __init__(self, client: Any, image: str) -> None:
        self.client = client
        self.image = image
        self.started: list[Any] = []

    def start(
        self,
        *,
        run_id: str | None,
        job_name: str | None,
        pb: bytes | None = None,
        metadata: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
        name: str | None = None,
        with_model: bool = True,
    ) -> FakeTraining:
        # SageMaker local mode names its training container "<10 random>-algo-1-<5 random>".
        name = name or f"{uuid.uuid4().hex[:10]}-algo-1-{uuid.uuid4().hex[:5]}"
        environment = {"AWS_REGION": "us-east-1"}
        if run_id is not None:
            environment["RUN_ID"] = run_id
        if job_name is not None:
            environment["TRAINING_JOB_NAME"] = job_name
        container = self.client.containers.run(
            self.image,
            ["/bin/sleep", "600"],
            name=name,
            detach=True,
            environment=environment,
            labels={"drtransfer-test": "carzip", **(labels or {})},
            network_mode="none",
        )
        self.started.append(container)
        _REPORT.containers += 1
        pb = pb if pb is not None else f"graph of {name}".encode()
        metadata_bytes = json.dumps(metadata).encode() if metadata is not None else FIXTURE_METADATA.read_bytes()
        files = {"model_metadata.json": metadata_bytes}
        if with_model:
            files["agent/model.pb"] = pb
        else:
            container.exec_run(["/bin/sh", "-c", "rm -rf /opt/ml/model/agent"])
        container.put_archive("/opt/ml/model", _tar_of(files))
        return FakeTraining(name, pb, metadata_bytes, container)

    def remove_all(self) -> None:
        for container in self.started:
            container.remove(force=True)
        self.started.clear()


def _tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def sagemaker(docker_client: Any, sagemaker_image: str) -> Iterator[SageMakerContainers]:
    containers = SageMakerContainers(docker_client, sagemaker_image)
    yield containers
    containers.remove_all()
