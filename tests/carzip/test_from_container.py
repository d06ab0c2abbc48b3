"""Car packages read from the run's SageMaker training container (``/opt/ml/model``) on a real Docker Engine.

The containers run an image made with ``docker import`` of a busybox root filesystem; they are named
like SageMaker local mode's (``<random>-algo-1-<random>``) and carry the environment the real one has
(``RUN_ID``, ``TRAINING_JOB_NAME`` = the model prefix), or a docker-compose label pointing at a compose
file, as DRfC's ``dr-find-sagemaker`` reads it.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from drtransfer.errors import ConfigError, ModelError
from drtransfer.packaging import PackageRequest, build_packages, get_packager, write_package
from drtransfer.plugins import PluginHost, get_plugin_manager
from drtransfer.runconfig import RunConfig
from drtransfer_plugins.carzip.container import (
    COMPOSE_FILES_LABEL,
    build_from_container,
    find_run_container,
    list_sagemaker_containers,
)
from tests.carzip.conftest import FIXTURE_METADATA, SageMakerContainers, make_run, read_archive

pytestmark = pytest.mark.docker

CONTAINER = PackageRequest(source="container")


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return get_plugin_manager()


def unique_prefix(tag: str) -> str:
    return f"rl-{tag}-{uuid.uuid4().hex[:8]}"


def run_for(local_s3: Any, run_id: str, prefix: str) -> RunConfig:
    # The container path never touches S3; the endpoint is only part of the run's configuration.
    return make_run(local_s3, "bucket", prefix, run_id=run_id)


def test_each_run_gets_its_own_container(
    local_s3: Any, sagemaker: SageMakerContainers, host: PluginHost, tmp_path: Path
) -> None:
    first, second = unique_prefix("a"), unique_prefix("b")
    ctr_1 = sagemaker.start(run_id="1", job_name=first)
    ctr_2 = sagemaker.start(run_id="2", job_name=second)
    # A stale container of another prefix with the same RUN_ID, started last (DRfC's old script took
    # whatever `docker ps` listed last).
    sagemaker.start(run_id="1", job_name=unique_prefix("old"))
    runs = [run_for(local_s3, "1", first), run_for(local_s3, "2", second)]

    outcomes = build_packages(runs, CONTAINER, get_packager(host, "car"), host)
    assert [o.error for o in outcomes] == [None, None]
    for outcome, container in zip(outcomes, (ctr_1, ctr_2), strict=True):
        assert outcome.package is not None
        assert outcome.package.origin == f"container {container.name}"
        path = write_package(outcome.package, tmp_path)
        assert path.name == f"{outcome.run.model_prefix}-1.tar.gz"
        assert read_archive(path.read_bytes()) == {
            "agent/model.pb": container.pb,
            "model_metadata.json": container.metadata,
        }


def test_a_compose_file_identifies_the_run_when_the_environment_does_not(
    local_s3: Any, sagemaker: SageMakerContainers, tmp_path: Path
) -> None:
    prefix = unique_prefix("compose")
    project = tmp_path / "tmpabc123"
    project.mkdir()
    compose = project / "docker-compose.yaml"
    service = f"algo-1-{uuid.uuid4().hex[:5]}"
    compose.write_text(
        f"services:\n  {service}:\n    environment:\n    - RUN_ID=7\n    - TRAINING_JOB_NAME={prefix}\n"
        f"    command: train\n"
    )
    labels = {COMPOSE_FILES_LABEL: str(compose), "com.docker.compose.service": service}
    mine = sagemaker.start(run_id=None, job_name=None, labels=labels, name=f"{uuid.uuid4().hex[:10]}-{service}")
    # The same compose file does not make a container of prefix "<prefix>-2" or RUN_ID 70 match.
    sibling = run_for(local_s3, "7", prefix + "-2")
    other_run = run_for(local_s3, "70", prefix)

    package = build_from_container(run_for(local_s3, "7", prefix), CONTAINER)
    assert package.origin == f"container {mine.name}"
    assert read_archive(package.data)["agent/model.pb"] == mine.pb
    for run in (sibling, other_run):
        with pytest.raises(ModelError, match="No running SageMaker container belongs to"):
            build_from_container(run, CONTAINER)


def test_no_container_for_a_run_names_what_was_found(local_s3: Any, sagemaker: SageMakerContainers) -> None:
    other = sagemaker.start(run_id="3", job_name=unique_prefix("other"))
    prefix = unique_prefix("none")
    with pytest.raises(ModelError) as error:
        build_from_container(run_for(local_s3, "3", prefix), CONTAINER)
    message = str(error.value)
    assert message.startswith(f"No running SageMaker container belongs to run 3 ({prefix})")
    assert f"wanted RUN_ID=3 and TRAINING_JOB_NAME={prefix}" in message
    assert f"{other.name} (RUN_ID=3, TRAINING_JOB_NAME=rl-other-" in message
    assert message.endswith("start its training, or package from S3 with --from s3.")
    # With no SageMaker container at all, the message says so.
    with pytest.raises(ModelError, match=r"none named like <random>-algo-1-<random> at all"):
        find_run_container([], run_for(local_s3, "3", prefix))


def test_two_candidates_for_a_run_are_refused_naming_both(local_s3: Any, sagemaker: SageMakerContainers) -> None:
    prefix = unique_prefix("twice")
    one = sagemaker.start(run_id="4", job_name=prefix)
    two = sagemaker.start(run_id="4", job_name=prefix)
    with pytest.raises(ModelError) as error:
        build_from_container(run_for(local_s3, "4", prefix), CONTAINER)
    message = str(error.value)
    assert message.startswith(f"2 running SageMaker containers match run 4 ({prefix})")
    assert one.name in message and two.name in message
    assert "docker stop NAME" in message


def test_a_container_without_a_model_yet_or_with_a_refused_one(
    local_s3: Any, sagemaker: SageMakerContainers, docker_client: Any
) -> None:
    empty_prefix, lidar_prefix = unique_prefix("empty"), unique_prefix("lidar")
    sagemaker.start(run_id="5", job_name=empty_prefix, with_model=False)
    with pytest.raises(ModelError, match=r"There is no /opt/ml/model/agent/model\.pb in container .* yet"):
        build_from_container(run_for(local_s3, "5", empty_prefix), CONTAINER)

    metadata = json.loads(FIXTURE_METADATA.read_text())
    metadata["sensor"] = ["FRONT_FACING_CAMERA", "DISCRETIZED_SECTOR_LIDAR"]
    sagemaker.start(run_id="5", job_name=lidar_prefix, metadata=metadata)
    with pytest.raises(ModelError, match=r"does not support the sensor\(s\) DISCRETIZED_SECTOR_LIDAR"):
        build_from_container(run_for(local_s3, "5", lidar_prefix), CONTAINER)

    listed = {c.name for c in list_sagemaker_containers(docker_client)}
    assert {c.name for c in sagemaker.started} <= listed


def test_container_source_refuses_a_checkpoint_choice(local_s3: Any, host: PluginHost) -> None:
    run = run_for(local_s3, "6", unique_prefix("ckpt"))
    with pytest.raises(ConfigError, match="--checkpoint best cannot be used with --from container"):
        get_packager(host, "car").build(run, PackageRequest(source="container", checkpoint="best"), host)
