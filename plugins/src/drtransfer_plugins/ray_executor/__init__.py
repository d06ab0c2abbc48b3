"""The ``ray`` executor: the engine's worker tasks run on the actors of a Ray cluster.

``drtransfer upload --executor ray [--ray-address ADDRESS|auto]`` (or ``DRTRANSFER_EXECUTOR=ray`` and
``RAY_ADDRESS``): the parent's scheduler stays where it is and decides everything; actors on every node
run :func:`drtransfer.engine.worker.run_task` and report back. A run whose run file sets
``DRTRANSFER_NODE=NAME`` runs only on the node started with the resource (or label) ``NAME``. Ray is the
optional extra ``drtransfer-plugins[ray]``; this module imports it only when the executor is chosen.
See ``docs/scale-out.md``.
"""

from __future__ import annotations

from drtransfer import hookimpl
from drtransfer.engine.executor import Executor, ExecutorChoice, ExecutorFactory
from drtransfer.engine.settings import EngineSettings
from drtransfer.errors import ConfigError
from drtransfer.registry import Registry


def ray_executor(choice: ExecutorChoice, settings: EngineSettings) -> tuple[Executor, EngineSettings]:
    """Join the cluster; the scheduler then keeps every actor of it busy."""
    try:
        from drtransfer_plugins.ray_executor.executor import prepare
    except ImportError as error:
        raise ConfigError(
            f"--executor ray needs Ray, which is not installed ({error}); install drtransfer-plugins[ray] "
            f"on this machine and on every node."
        ) from None
    return prepare(choice, settings)


@hookimpl
def drtransfer_register_executors(register: Registry[ExecutorFactory]) -> None:
    register(
        "ray", ray_executor, "actors on a Ray cluster, runs placed by DRTRANSFER_NODE (extra drtransfer-plugins[ray])"
    )


__all__ = ["ray_executor"]
