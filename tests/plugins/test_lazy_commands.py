"""The CLI imports a command's module only when that command runs (issue 17: start-up), and still lists
every command."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

from click.testing import CliRunner

from drtransfer_cli import commands
from drtransfer_cli.main import COMMANDS, cli, registered


def test_the_command_table_names_what_every_module_registers() -> None:
    defined = {
        name: module.name for module in pkgutil.iter_modules(commands.__path__) for name in registered(module.name)
    }
    assert defined == COMMANDS


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == sorted(COMMANDS)


def test_upload_imports_neither_the_other_commands_nor_their_jobs() -> None:
    probe = (
        "import json, sys; from drtransfer_cli.main import cli; import click; "
        "cli.get_command(click.Context(cli), 'upload'); "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('drtransfer', 'multiprocessing.managers')))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(json.loads(done.stdout))
    assert "drtransfer_cli.commands.upload" in loaded
    others = {f"drtransfer_cli.commands.{m}" for m in set(COMMANDS.values()) - {"upload", "import_"}}
    assert not loaded & others
    assert not loaded & {"drtransfer.models.backup", "drtransfer.jobs.cars", "drtransfer_cli.commands.bench"}
