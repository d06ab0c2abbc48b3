"""The ``ray`` executor on a three-node Ray cluster on this machine: each run's tasks run on the node its
``DRTRANSFER_NODE`` names, a node removed mid-transfer ends the run cleanly and a re-run completes, and
no secret reaches Ray's logs."""

from __future__ import annotations

import threading
from typing import Any

from drtransfer.endpoints import Endpoint
from drtransfer.engine import MiB, run_transfer
from drtransfer.engine.executor import ExecutorChoice
from drtransfer.locals3 import SeaweedServer
from drtransfer.operations import ModelPlan, ModelResult
from drtransfer_plugins.ray_executor import ray_executor
from drtransfer_plugins.ray_executor.executor import RayExecutor
from tests.conftest import list_multipart_uploads as list_uploads
from tests.engine.engine_helpers import Recorder, assert_copied, base_settings, copy_plan, put_multipart, random_bytes
from tests.infra.faultproxy import FaultProxy
from tests.reliability.test_secrets import leaks, written_files
from tests.scaleout.conftest import RayCluster


def executor_for(**overrides: Any) -> tuple[RayExecutor, Any]:
    executor, settings = ray_executor(ExecutorChoice("ray"), base_settings(1, concurrency=2, **overrides))
    assert isinstance(executor, RayExecutor)
    return executor, settings


def seeded(server: SeaweedServer, bucket: str, count: int, size: int) -> dict[str, bytes]:
    data = {f"ckpt-{n}": random_bytes(size) for n in range(count)}
    for key, body in data.items():
        put_multipart(server.client(), bucket, key, body)
    return data


def placed(plan: ModelPlan, node: str | None) -> ModelPlan:
    plan.node = node
    return plan


def test_each_run_moves_on_its_own_node(
    ray_cluster: RayCluster, local_s3: SeaweedServer, second_s3: SeaweedServer, upload_s3: SeaweedServer,
    local_bucket: str, second_bucket: str, upload_bucket: str,
) -> None:  # fmt: skip
    data_a = seeded(local_s3, local_bucket, 2, 11 * MiB)
    data_b = seeded(second_s3, second_bucket, 2, 11 * MiB)
    endpoints = {"a": local_s3.endpoint("a"), "b": second_s3.endpoint("b"), "dst": upload_s3.endpoint("dst")}
    plans = [
        placed(copy_plan("A", local_s3, "a", local_bucket, sorted(data_a), "dst", upload_bucket, "A/"), "node-a"),
        placed(copy_plan("B", second_s3, "b", second_bucket, sorted(data_b), "dst", upload_bucket, "B/"), "node-b"),
    ]
    executor, settings = executor_for()
    assert settings.processes == 3  # one actor on each of the three nodes: the scheduler keeps them all busy

    results = run_transfer(plans, endpoints, settings, [], executor)

    assert [r.status for r in results] == ["ok", "ok"], [r.error for r in results]
    assert_copied(upload_s3, upload_bucket, "A/", data_a)
    assert_copied(upload_s3, upload_bucket, "B/", data_b)
    assert executor.ran_on[0] == {ray_cluster.node_id("node-a")}  # as the actors themselves report it
    assert executor.ran_on[1] == {ray_cluster.node_id("node-b")}
    assert executor.most_at_once and max(executor.most_at_once) <= settings.concurrency  # memory bound per actor
    assert list_uploads(upload_s3, upload_bucket) == []


class _RemoveNode(Recorder):
    """Removes a node of the cluster (on a thread of its own) once model ``watch`` moved bytes."""

    def __init__(self, cluster: RayCluster, node: str, watch: str) -> None:
        super().__init__()
        self.cluster, self.node, self.watch = cluster, node, watch
        self.removed = threading.Event()
        self.thread: threading.Thread | None = None

    def on_progress(self, model_id: str, delta: int, **kwargs: Any) -> None:
        super().on_progress(model_id, delta)
        if self.thread is None and self.progress.get(self.watch, 0) > 2 * MiB:
            self.thread = threading.Thread(target=self._remove, daemon=True)
            self.thread.start()

    def _remove(self) -> None:
        self.cluster.remove(self.node)
        self.removed.set()


def test_a_node_removed_mid_transfer_then_rerun(
    ray_cluster: RayCluster, local_s3: SeaweedServer, second_s3: SeaweedServer, upload_s3: SeaweedServer,
    local_bucket: str, second_bucket: str, upload_bucket: str,
) -> None:  # fmt: skip
    pinned = seeded(second_s3, second_bucket, 3, 11 * MiB)  # only node-b reaches it
    spread = seeded(local_s3, local_bucket, 3, 11 * MiB)  # any node does
    with FaultProxy(second_s3.ports["s3"]) as slow_b, FaultProxy(local_s3.ports["s3"]) as slow_a:
        slow_a.bandwidth = slow_b.bandwidth = 3 * MiB  # the removal lands mid-transfer
        endpoints = {
            "b": Endpoint("b", slow_b.url, "us-east-1", second_s3.endpoint().credentials),
            "a": Endpoint("a", slow_a.url, "us-east-1", local_s3.endpoint().credentials),
            "dst": upload_s3.endpoint("dst"),
        }
        plans = [
            placed(copy_plan("P", second_s3, "b", second_bucket, sorted(pinned), "dst", upload_bucket, "P/"), "node-b"),
            placed(copy_plan("S", local_s3, "a", local_bucket, sorted(spread), "dst", upload_bucket, "S/"), None),
        ]
        executor, settings = executor_for(max_attempts=3)
        remover = _RemoveNode(ray_cluster, "node-b", "P")
        try:
            results: list[ModelResult] = run_transfer(plans, endpoints, settings, [remover], executor)
        finally:
            if remover.thread is not None:
                remover.thread.join(60)
        assert remover.removed.is_set()
        pinned_result, spread_result = results
        assert spread_result.status == "ok", spread_result.error  # its lost tasks were retried on other nodes
        assert_copied(upload_s3, upload_bucket, "S/", spread)
        if pinned_result.status != "ok":  # no other node may read its source: one sentence, nothing half-written
            errors = {op.error for op in pinned_result.operations if op.error}
            assert any("No node of the Ray cluster named 'node-b'" in e for e in errors), errors
        assert list_uploads(upload_s3, upload_bucket) == []  # every multipart upload started was aborted

        ray_cluster.add("node-b")  # back, as a new node with the same resource
        slow_a.bandwidth = slow_b.bandwidth = 0
        executor, settings = executor_for()
        rerun = run_transfer(plans, endpoints, settings, [], executor)
    assert [r.status for r in rerun] == ["ok", "ok"], [r.error for r in rerun]
    assert_copied(upload_s3, upload_bucket, "P/", pinned)
    assert executor.ran_on[0] == {ray_cluster.node_id("node-b")}
    assert list_uploads(upload_s3, upload_bucket) == []


def test_no_secret_in_rays_logs(  # runs last in this file: after every transfer above
    ray_cluster: RayCluster, local_s3: SeaweedServer, upload_s3: SeaweedServer
) -> None:
    texts = written_files(ray_cluster.logs_dir)
    assert texts  # the scan looks at something: Ray's own logs of this session
    assert leaks([local_s3.secret_key, upload_s3.secret_key], texts) == []
