"""One Ray cluster for every scale-out test: a head and two worker nodes on 127.0.0.1, each worker node
with a resource of its own (``node-a``, ``node-b``) that runs name with ``DRTRANSFER_NODE``; a second
SeaweedFS source beside the session's ``local_s3``. The cluster starts once per session (seconds) and a
test that removes a node puts it back."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# Every address on 127.0.0.1: without this Ray swaps a loopback address for the machine's own IP (the
# variable is Ray's switch for clusters on one machine, its name is about Windows and macOS; Ray reads it
# when imported, so it is set before).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
import ray
from ray.cluster_utils import Cluster

from drtransfer.locals3 import SeaweedServer
from tests.conftest import unique_bucket

MiB = 1024 * 1024
LOOPBACK = "127.0.0.1"
NODE_NAMES = ("node-a", "node-b")
OBJECT_STORE = 80 * MiB  # Ray's smallest: the tasks carry no bytes, only messages
# Detect a removed node within a second or two instead of Ray's default half a minute.
SYSTEM_CONFIG = {"health_check_period_ms": 500, "health_check_failure_threshold": 3, "health_check_timeout_ms": 500}


@dataclass
class RayCluster:
    cluster: Cluster
    nodes: dict[str, Any] = field(default_factory=dict)  # name -> ray's Node

    def add(self, name: str) -> None:
        self.nodes[name] = self.cluster.add_node(
            num_cpus=1, resources={name: 1}, object_store_memory=OBJECT_STORE, node_ip_address=LOOPBACK
        )
        self.cluster.wait_for_nodes()

    def remove(self, name: str) -> None:
        self.cluster.remove_node(self.nodes.pop(name), allow_graceful=False)

    def node_id(self, name: str) -> str:
        node_id: str = self.nodes[name].node_id
        return node_id

    @property
    def logs_dir(self) -> Path:
        return Path(self.cluster.head_node.get_logs_dir_path())


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    temp_dir = tempfile.mkdtemp(prefix="drt-ray-")
    os.environ["RAY_TMPDIR"] = temp_dir  # the nodes' files too (Ray's default /tmp/ray is shared)
    ray_dir = os.path.join(temp_dir, "ray")
    os.makedirs(ray_dir)
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "node_ip_address": LOOPBACK,
            "include_dashboard": False,
            "object_store_memory": OBJECT_STORE,
            "_system_config": SYSTEM_CONFIG,
            "temp_dir": ray_dir,  # short: Ray's socket paths must fit in 107 bytes
        },
    )
    handle = RayCluster(cluster)
    for name in NODE_NAMES:
        handle.add(name)
    ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
    yield handle
    ray.shutdown()
    cluster.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def second_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A second DRfC MinIO stand-in: the source of the runs on the other node."""
    with SeaweedServer(data_dir=tmp_path_factory.mktemp("weed-second")) as server:
        yield server


@pytest.fixture
def second_bucket(second_s3: SeaweedServer) -> str:
    """A fresh bucket on :func:`second_s3` (a few per session: they are left to the server's end)."""
    return fresh_bucket(second_s3, "second")


def fresh_bucket(server: SeaweedServer, prefix: str) -> str:
    name = unique_bucket(prefix)
    server.create_bucket(name)
    return name
