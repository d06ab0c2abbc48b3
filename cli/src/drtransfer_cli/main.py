"""The ``drtransfer`` command group; commands are modules in :mod:`drtransfer_cli.commands`.

A command's module is imported only when that command runs (or ``--help`` lists it): ``drtransfer
upload`` does not pay for the imports of backup, bench or the models catalogue.
"""

from __future__ import annotations

import gc
import importlib

import click

from drtransfer import __version__

# command name -> the module of drtransfer_cli.commands whose register() defines it
# (tests/plugins/test_lazy_commands.py checks this against what every module registers)
COMMANDS = {
    "backup": "backup",
    "bench": "bench",
    "car-zip": "carzip",
    "demo": "demo",
    "import": "import_",
    "logout": "import_",
    "models": "models",
    "plugins": "plugins",
    "prune": "prune",
    "restore": "restore",
    "upload": "upload",
}


def registered(module: str) -> dict[str, click.Command]:
    """The commands ``drtransfer_cli.commands.<module>`` registers."""
    group = click.Group()
    importlib.import_module(f"drtransfer_cli.commands.{module}").register(group)
    return dict(group.commands)


def collecting() -> None:
    """The command's modules are in: freeze what they made and collect as usual from here on (the console
    scripts start with the collector off: drtransfer_cli/entry.py)."""
    gc.freeze()
    gc.enable()


class LazyGroup(click.Group):
    """Lists :data:`COMMANDS` without importing them; imports a command's module when it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            for name, command in registered(COMMANDS[cmd_name]).items():
                self.commands.setdefault(name, command)
            collecting()  # what the command imported lives until exit too (see main and entry.py)
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="drtransfer")
def cli() -> None:
    """deepracer-transfer: upload, import and package many DeepRacer-for-Cloud models at once.

    \b
    Start with:  drtransfer demo          (an embedded S3 server with three sample runs)
    Then:        drtransfer upload RUN_FILE... -f
    """


def main() -> None:
    # Everything imported so far lives until exit: keep it out of the collector's generations (fewer and
    # shorter collections, and forked workers do not touch those pages); the command's module, imported
    # later, is frozen in LazyGroup.get_command.
    gc.freeze()
    cli(prog_name="drtransfer")
