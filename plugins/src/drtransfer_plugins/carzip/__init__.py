"""The ``car`` package format: what a physical DeepRacer loads.

``<name>.tar.gz`` holding ``agent/model.pb`` (the chosen checkpoint's frozen graph) and
``model_metadata.json`` at the root, built from one of two sources:

- ``s3`` (default): the checkpoint chosen by any selector (``last``, ``best``, ``step:N`` ...) is
  streamed from the run's model prefix (``model/model_N.pb``, ``model/model_metadata.json``);
- ``container``: DRfC's original behaviour, reading ``/opt/ml/model`` of the run's running SageMaker
  container through the Docker SDK (see :mod:`drtransfer_plugins.carzip.container`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from drtransfer import hookimpl
from drtransfer.errors import ConfigError
from drtransfer.packaging import Package, PackageRequest
from drtransfer_plugins.carzip.rules import CAR_FORMAT, CAR_SUFFIX

if TYPE_CHECKING:
    from drtransfer.plugins import PluginHost
    from drtransfer.registry import Registry
    from drtransfer.runconfig import RunConfig

SOURCES = ("s3", "container")


class CarPackager:
    """Builds the car's ``<name>.tar.gz`` for one run (see the module docstring)."""

    sources = SOURCES
    suffix = CAR_SUFFIX

    def check_runs(self, runs: Sequence[RunConfig], request: PackageRequest) -> None:
        """The container source finds a run's container by ``RUN_ID=<DR_RUN_ID>``: refuse runs sharing one."""
        if request.source != "container":
            return
        by_id: dict[str, list[RunConfig]] = {}
        for run in runs:
            by_id.setdefault(run.run_id, []).append(run)
        for run_id, shared in by_id.items():
            if len(shared) > 1:
                labels = [run.label for run in shared]
                names = f"{', '.join(labels[:-1])} and {labels[-1]}"
                raise ConfigError(
                    f"--from container finds each run's training container by RUN_ID=<DR_RUN_ID>, and {names} "
                    f"{'both' if len(shared) == 2 else 'all'} use DR_RUN_ID={run_id}, so their containers cannot be "
                    f"told apart; give each its own DR_RUN_ID, or package from S3 with --from s3."
                )

    def build(self, run: RunConfig, request: PackageRequest, host: PluginHost) -> Package:
        if request.source == "container":
            if request.checkpoint not in (None, "last"):
                raise ConfigError(
                    f"--checkpoint {request.checkpoint} cannot be used with --from container: the container "
                    f"holds only the model it last saved; use --from s3 to choose a checkpoint."
                )
            from drtransfer_plugins.carzip.container import build_from_container

            return build_from_container(run, request)
        if request.source == "s3":
            from drtransfer_plugins.carzip.s3source import build_from_s3

            return build_from_s3(run, request, host)
        raise ConfigError(f"The car package cannot be built from {request.source!r}; use one of {', '.join(SOURCES)}.")


@hookimpl
def drtransfer_register_packagers(register: Registry[Any]) -> None:
    register(
        CAR_FORMAT,
        CarPackager(),
        "DeepRacer car: <name>.tar.gz with agent/model.pb and model_metadata.json (from S3 or the training container)",
    )
