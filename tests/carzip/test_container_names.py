"""Which container names are SageMaker training containers (local mode names them
``<10 random>-algo-1-<5 random>``)."""

from __future__ import annotations

import pytest

from drtransfer_plugins.carzip.container import SAGEMAKER_NAME


@pytest.mark.parametrize("name", ["q8w2e4r6t0-algo-1-a1b2c", "tmpabc123_algo-1-xyz12_1", "abcdefghij-algo-2-zz9zz"])
def test_sagemaker_local_mode_names_are_candidates(name: str) -> None:
    assert SAGEMAKER_NAME.match(name)


@pytest.mark.parametrize(
    "name",
    [
        "deepracer-0-rl_coach-1",  # DRfC compose
        "deepracer-0-robomaker-1",
        "deepracer-0_rl_coach.1.k3j4h5",  # DRfC swarm
        "deepracer-eval-0",
        "minio",
        "my-algo-1-trainer-x",
    ],
)
def test_other_drfc_containers_are_not(name: str) -> None:
    assert not SAGEMAKER_NAME.match(name)
