"""`drtransfer plugins`: every plugin with version, distribution, hooks and checkpoint forms."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from drtransfer_cli.main import cli

BUILTINS = ("aws-console", "carzip", "checkpoints", "droa", "notify", "ray")


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("DRTRANSFER_DISABLE_PLUGINS", raising=False)
    return CliRunner()


def test_plugins_lists_the_builtins(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for name in BUILTINS:
        assert any(line.startswith(f"{name} 0.1.0 (drtransfer-plugins, built-in)") for line in lines), name
    assert "drtransfer.default_selection 0.1.0 (drtransfer, built-in)" in lines
    assert "example 0.1.0 (drtransfer-example, third-party)" in lines
    block = lines[lines.index("checkpoints 0.1.0 (drtransfer-plugins, built-in)") + 1 :][:4]
    assert block[0] == "    hooks: drtransfer_checkpoint_expressions, drtransfer_select_checkpoint"
    assert [line.split(":")[0] for line in block[1:]] == [
        "    --checkpoint best",
        "    --checkpoint step",
        "    --checkpoint metric",
    ]


def test_plugins_json(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    records = {record["name"]: record for record in map(json.loads, result.output.splitlines())}
    assert set(BUILTINS) | {"example", "drtransfer.default_selection"} <= set(records)
    assert records["notify"] == {
        "name": "notify",
        "version": "0.1.0",
        "distribution": "drtransfer-plugins",
        "hooks": ["drtransfer_register_notifiers"],
        "builtin": True,
        "enabled": True,
        "checkpoint_expressions": [],
        "executors": [],
    }
    assert records["example"]["hooks"] == [
        "drtransfer_checkpoint_expressions",
        "drtransfer_extend_plan",
        "drtransfer_notify",
        "drtransfer_select_checkpoint",
    ]
    assert records["drtransfer.default_selection"]["checkpoint_expressions"][0].startswith("last: ")


def test_plugins_shows_disabled_ones(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["plugins", "--json", "--disable-plugin", "example"], env={"DRTRANSFER_DISABLE_PLUGINS": "droa"}
    )
    assert result.exit_code == 0, result.output
    records = {record["name"]: record for record in map(json.loads, result.output.splitlines())}
    assert records["example"]["enabled"] is False and records["example"]["hooks"] == []
    assert records["droa"]["enabled"] is False
    assert records["checkpoints"]["enabled"] is True
    human = runner.invoke(cli, ["plugins", "--disable-plugin", "example"])
    assert "example 0.1.0 (drtransfer-example, third-party, disabled)" in human.output.splitlines()


def test_plugins_with_an_unknown_disabled_name(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["plugins", "--disable-plugin", "nope"])
    assert result.exit_code == 2
    assert "Cannot disable unknown plugin(s) nope; installed plugins:" in result.output
