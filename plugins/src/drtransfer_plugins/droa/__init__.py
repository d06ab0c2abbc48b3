"""``droa``: import models into DeepRacer on AWS (DRoA), the community successor of the AWS console.

Configure ``DR_DROA_URL`` (the DRoA website) and ``DR_DROA_USERNAME``; the password is asked for, or
read with ``--password-stdin``. ``docs/import.md`` has the details.
"""

from __future__ import annotations

from typing import Any

from drtransfer import hookimpl
from drtransfer.registry import Registry
from drtransfer_plugins.droa.importer import TARGET, DroaImporter


@hookimpl
def drtransfer_register_importers(register: Registry[Any]) -> None:
    register(TARGET, DroaImporter(), "DeepRacer on AWS: copy the model into DRoA's upload bucket, POST /importmodel")
