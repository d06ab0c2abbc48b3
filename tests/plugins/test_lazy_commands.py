"""The CLI imports a command's module only when that command runs (issue 17: start-up), and still lists
every command."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

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


def test_the_collector_is_off_while_a_command_is_imported_and_on_when_it_runs() -> None:
    """The console scripts start in drtransfer_cli.entry (start-up CPU, issue 17): no collection while
    the command's modules are imported, the usual collector once they are in (never off for good)."""
    probe = (
        "import atexit, gc, json, sys\n"
        "import drtransfer_cli.main as main_module\n"
        "from drtransfer_cli import entry\n"
        "seen = {'before': gc.isenabled()}\n"
        "real = main_module.registered\n"
        "def registered(module):\n"
        "    seen['importing'] = gc.isenabled()\n"
        "    return real(module)\n"
        "main_module.registered = registered\n"
        "atexit.register(lambda: print(json.dumps({**seen, 'running': gc.isenabled()})))\n"
        "sys.argv = ['drtransfer', 'plugins', '--help']\n"
        "entry.drtransfer()\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.splitlines()[-1]) == {"before": True, "importing": False, "running": True}


def test_the_console_scripts_start_in_the_entry_module() -> None:
    scripts = tomllib.loads((Path(__file__).parents[2] / "cli" / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {
        "drtransfer": "drtransfer_cli.entry:drtransfer",
        "dr-upload-model": "drtransfer_cli.entry:dr_upload_model",
        "dr-upload-car-zip": "drtransfer_cli.entry:dr_upload_car_zip",
    }
    for target in scripts.values():
        module, name = target.split(":")
        assert callable(getattr(importlib.import_module(module), name))
