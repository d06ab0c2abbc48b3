"""Jobs: whole commands as Python calls, from typed requests, printing nothing.

- :func:`upload` (:class:`UploadRequest`): upload the chosen checkpoint of many runs, optionally import them;
- :func:`import_models` (:class:`ImportRequest`): import without an upload step;
- :func:`package_cars` (:class:`CarRequest`): build and deliver car packages.

Each takes subscribers (progress and job events) and, where it writes after a question, a ``confirm``
callback. See ``docs/api.md``.
"""

from drtransfer.jobs.base import Confirm, Declined, JobSubscriber, Notifications, always
from drtransfer.jobs.cars import CarReport, CarRequest, package_cars
from drtransfer.jobs.imports import ImportReport, ImportRequest, import_models
from drtransfer.jobs.upload import ImportSpec, UploadReport, UploadRequest, upload

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
