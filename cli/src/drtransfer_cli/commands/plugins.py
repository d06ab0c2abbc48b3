"""``drtransfer plugins``: every plugin with its version, distribution and the hooks it implements."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from drtransfer.plugins import PluginHost, PluginInfo
from drtransfer_cli import app


def plugin_record(info: PluginInfo, expressions: list[str], executors: list[str] | None = None) -> dict[str, Any]:
    """The JSON object of one plugin (``--json`` prints one per line)."""
    record = dataclasses.asdict(info)
    record["checkpoint_expressions"] = expressions
    record["executors"] = executors or []
    return record


def _human(host: PluginHost) -> list[str]:
    expressions = host.checkpoint_expressions_by_plugin()
    executors = executors_by_plugin(host)
    lines = []
    for info in host.describe():
        kind = "built-in" if info.builtin else "third-party"
        status = "" if info.enabled else ", disabled"
        lines.append(f"{info.name} {info.version} ({info.distribution}, {kind}{status})")
        if info.hooks:
            lines.append(f"    hooks: {', '.join(info.hooks)}")
        lines.extend(f"    --checkpoint {form}" for form in expressions.get(info.name, []))
        lines.extend(f"    --executor {name}: {text}" for name, text in executors.get(info.name, []))
    return lines


def executors_by_plugin(host: PluginHost) -> dict[str, list[tuple[str, str]]]:
    """Plugin name -> the executors it registers (name, description)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for entry in host.executors():
        out.setdefault(entry.plugin, []).append((entry.name, entry.description))
    return out


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
            executors = executors_by_plugin(host)
            for info in host.describe():
                names = [name for name, _ in executors.get(info.name, [])]
                app.print_json(plugin_record(info, expressions.get(info.name, []), names))
            return
        for line in _human(host):
            click.echo(line)
