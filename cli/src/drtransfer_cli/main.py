"""The ``drtransfer`` command group; commands are modules in :mod:`drtransfer_cli.commands`."""

from __future__ import annotations

import gc
import importlib
import pkgutil

import click

from drtransfer import __version__
from drtransfer_cli import commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="drtransfer")
def cli() -> None:
    """deepracer-transfer: upload, import and package many DeepRacer-for-Cloud models at once.

    \b
    Start with:  drtransfer demo          (an embedded S3 server with three sample runs)
    Then:        drtransfer upload RUN_FILE... -f
    """


for _module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
    importlib.import_module(f"{commands.__name__}.{_module.name}").register(cli)


def main() -> None:
    # Everything imported so far lives until exit: keep it out of the collector's generations (fewer and
    # shorter collections, and forked workers do not touch those pages).
    gc.freeze()
    cli(prog_name="drtransfer")
