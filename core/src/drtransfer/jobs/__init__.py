"""Jobs: whole commands as Python calls, from typed requests, printing nothing.

- :func:`upload` (:class:`UploadRequest`): upload the chosen checkpoint of many runs, optionally import them;
- :func:`import_models` (:class:`ImportRequest`): import without an upload step;
- :func:`package_cars` (:class:`CarRequest`): build and deliver car packages.

Each takes subscribers (progress and job events) and, where it writes after a question, a ``confirm``
callback. See ``docs/api.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from drtransfer.jobs.base import Confirm, Declined, JobSubscriber, Notifications, always
from drtransfer.jobs.upload import ImportSpec, UploadReport, UploadRequest, upload

if TYPE_CHECKING:
    from drtransfer.jobs.cars import CarReport, CarRequest, package_cars
    from drtransfer.jobs.imports import ImportReport, ImportRequest, import_models

# The other jobs' modules are imported when one of their names is first used (PEP 562): `drtransfer
# upload` does not import the car packaging job. (The upload job stays eager: its function shares the
# name of its module, which importing the module would otherwise set here.)
_MODULES = {
    "CarReport": "cars", "CarRequest": "cars", "package_cars": "cars",
    "ImportReport": "imports", "ImportRequest": "imports", "import_models": "imports",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CarReport",
    "CarRequest",
    "Confirm",
    "Declined",
    "ImportReport",
    "ImportRequest",
    "ImportSpec",
    "JobSubscriber",
    "Notifications",
    "UploadReport",
    "UploadRequest",
    "always",
    "import_models",
    "package_cars",
    "upload",
]
