"""The console scripts (``[project.scripts]`` in cli/pyproject.toml).

Each turns the garbage collector off before it imports the command's modules, and
:func:`drtransfer_cli.main.collecting` turns it on once they are in. Imports (botocore's models, our
dataclasses, click) make a great many objects and no garbage worth collecting, and the collector's
passes over them were about a tenth of the start-up CPU (import and first client: median 0.70 s with it
on, 0.63 s off, 12 runs each). What the imports made is then frozen, so later collections never walk
it. Importing this module changes nothing: only calling an entry does, so tests that import the CLI
keep their collector.
"""

from __future__ import annotations

import gc


def drtransfer() -> None:
    gc.disable()  # main's LazyGroup calls collecting() once the command's module is imported
    from drtransfer_cli.main import main

    main()


def dr_upload_model() -> None:
    gc.disable()
    from drtransfer_cli.drfc import upload_model_main
    from drtransfer_cli.main import collecting

    collecting()
    upload_model_main()


def dr_upload_car_zip() -> None:
    gc.disable()
    from drtransfer_cli.carzip_drfc import upload_car_zip_main
    from drtransfer_cli.main import collecting

    collecting()
    upload_car_zip_main()
