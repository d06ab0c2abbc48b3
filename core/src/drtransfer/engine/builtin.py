"""Core's own executor, registered like a plugin's: ``local`` (worker processes on this machine)."""

from __future__ import annotations

from drtransfer import hookimpl
from drtransfer.engine.executor import ExecutorFactory
from drtransfer.engine.local_executor import local_executor
from drtransfer.registry import Registry


@hookimpl
def drtransfer_register_executors(register: Registry[ExecutorFactory]) -> None:
    register("local", local_executor, "worker processes on this machine (the default)")
