"""``drtransfer plugins``: every plugin with its version, distribution and the hooks it implements."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from drtransfer.plugins import PluginHost, PluginInfo
from drtransfer_cli import app


def plugin_record(info: PluginInfo, expressions: list[str]) -> dict[str, Any]:
    """The JSON object of one plugin (``--json`` prints one per line)."""
    record = dataclasses.asdict(info)
    record["checkpoint_expressions"] = expressions
    return record


def _human(host: PluginHost) -> list[str]:
    expressions = host.checkpoint_expressions_by_plugin()
    lines = []
    for info in host.describe():
        kind = "built-in" if info.builtin else "third-party"
        status = "" if info.enabled else ", disabled"
        lines.append(f"{info.name} {info.version} ({info.distribution}, {kind}{status})")
        if info.hooks:
            lines.append(f"    hooks: {', '.join(info.hooks)}")
        lines.extend(f"    --checkpoint {form}" for form in expressions.get(info.name, []))
    return lines


def register(cli: click.Group) -> None:
    @cli.command("plugins")
    @click.option("--json", "json_output", is_flag=True, help="One JSON object per plugin per line on stdout.")
    @click.option(
        "--disable-plugin",
        "disabled_plugins",
        multiple=True,
        metavar="NAME",
        help="Do not load this plugin (repeatable; also DRTRANSFER_DISABLE_PLUGINS).",
    )
    @app.handle_errors
    def plugins(json_output: bool, disabled_plugins: tuple[str, ...]) -> None:
        """List every plugin: version, distribution, the hooks it implements and its checkpoint forms.

        Plugins are found through the `drtransfer` entry-point group (built-ins from drtransfer-plugins
        and any installed third-party plugin); disabled ones are listed as such.
        """
        host = app.build_host(disabled_plugins)
        if json_output:
            expressions = host.checkpoint_expressions_by_plugin()
            for info in host.describe():
                app.print_json(plugin_record(info, expressions.get(info.name, [])))
            return
        for line in _human(host):
            click.echo(line)
