"""``drtransfer bench``: how fast does the upload path go between my endpoints, per engine setting?

The work is in :mod:`drtransfer_cli.benchmarking`; this module parses the settings to try, asks before writing to
a user's buckets, and prints the table, the JSON document or the plot.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from drtransfer.engine import EngineSettings
from drtransfer.errors import ConfigError, Interrupted
from drtransfer.samples import NETWORK_SIZES
from drtransfer_cli import app, options

if TYPE_CHECKING:  # imported when the command runs: every command module loads at each start
    from drtransfer_cli.benchmarking import BenchReport, BenchSpec, Measurement


def _split(values: Sequence[str]) -> list[str]:
    """``("1,2", "4")`` -> ``["1", "2", "4"]``: a list option may be repeated or comma-separated."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def parse_ints(values: Sequence[str], name: str, minimum: int) -> list[int | None]:
    out: list[int | None] = []
    for text in _split(values):
        try:
            number = int(text)
        except ValueError:
            raise click.BadParameter(f"{text!r} is not a whole number.", param_hint=name) from None
        if number < minimum:
            raise click.BadParameter(f"{number} is below the minimum {minimum}.", param_hint=name)
        out.append(number)
    return out or [None]


def parse_sizes(values: Sequence[str]) -> list[int | None]:
    size = options.ByteSize()
    return [size.convert(text, None, None) for text in _split(values)] or [None]


def settings_grid(
    processes: Sequence[str], concurrency: Sequence[str], part_size: Sequence[str]
) -> list[EngineSettings]:
    """Every combination of the values given (the engine default where an option is not given)."""
    grid = itertools.product(
        parse_ints(processes, "--processes", 0), parse_ints(concurrency, "--concurrency", 1), parse_sizes(part_size)
    )
    return [app.engine_settings(p, c, s) for p, c, s in grid]


# ---- output -----------------------------------------------------------------------------------------

HEADER = ("setting", "run", "seconds", "MiB/s", "objects/s", "CPU s", "peak RSS")


def _row(label: str, run: str, m: dict[str, float]) -> tuple[str, ...]:
    return (
        label,
        run,
        f"{m['seconds']:.2f}",
        f"{m['mib_per_s']:.1f}",
        f"{m['objects_per_s']:.1f}",
        f"{m['cpu_seconds']:.2f}",
        f"{m['peak_rss_mib']:.0f} MiB",
    )


def medians(measurements: Sequence[Measurement]) -> list[tuple[str, dict[str, float]]]:
    """Per setting (in the order tried), the median of each figure over its successful runs."""
    by_label: dict[str, list[dict[str, Any]]] = {}
    for m in measurements:
        if m.status == "ok":
            by_label.setdefault(m.label, []).append(m.to_json())
    keys = ("seconds", "mib_per_s", "objects_per_s", "cpu_seconds", "peak_rss_mib")
    return [(label, {k: statistics.median(r[k] for r in rows) for k in keys}) for label, rows in by_label.items()]


def table(report: BenchReport, repeat: int) -> str:
    rows: list[tuple[str, ...]] = [HEADER]
    for m in report.measurements:
        if m.status == "ok":
            rows.append(_row(m.label, str(m.repeat), m.to_json()))
        else:
            rows.append((m.label, str(m.repeat), "failed", m.error or "", "", "", ""))
    if repeat > 1:
        rows += [_row(label, "median", figures) for label, figures in medians(report.measurements)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    spec = report.spec
    return "\n".join(
        [
            f"{spec.models} {spec.network} model(s), {app.human_bytes(report.model_bytes)} in {report.model_objects} "
            f"objects per upload; {report.to_json()['source']} -> {report.to_json()['target']}"
            f" ({'server-side copy possible' if spec.same_endpoint else 'cross-endpoint'})",
            *lines,
        ]
    )


def plot(report: BenchReport, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib; install it with 'pip install drtransfer-cli[plot]'.") from None
    figures = medians(report.measurements)
    if not figures:
        raise ConfigError("Nothing to plot: every upload of the bench failed.")
    labels = [label.replace(", ", "\n") for label, _ in figures]
    fig, axes = plt.subplots(1, 3, figsize=(4 + 2.2 * len(figures), 4.5))
    for ax, key, title in zip(
        axes, ("mib_per_s", "cpu_seconds", "peak_rss_mib"), ("MiB/s", "client CPU seconds", "peak RSS (MiB)"),
        strict=True,
    ):
        ax.bar(range(len(figures)), [f[key] for _, f in figures], color="tab:blue")
        ax.set_xticks(range(len(figures)), labels, fontsize=8)
        ax.set_title(title)
    spec = report.spec
    fig.suptitle(f"drtransfer bench: {spec.models} {spec.network} model(s), {app.human_bytes(report.model_bytes)}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---- the command ------------------------------------------------------------------------------------


def estimate_bytes(models: int, network: str, scale: float) -> int:
    return int(models * sum(NETWORK_SIZES[network]) * scale)


def register(cli: click.Group) -> None:
    @cli.command("bench")
    @options.run_selection
    @click.option("--demo", is_flag=True, help="Bench between two embedded SeaweedFS servers on 127.0.0.1.")
    @click.option("--models", type=click.IntRange(min=1), default=4, show_default=True, help="Synthetic models.")
    @click.option("--network", type=click.Choice(tuple(NETWORK_SIZES)), default="shallow", show_default=True,
                  help="Network whose checkpoint sizes the models get.")
    @click.option("--processes", "processes", multiple=True, metavar="N[,N...]",
                  help="Worker processes to try (repeatable or comma-separated; default: CPU count).")
    @click.option("--concurrency", "concurrency", multiple=True, metavar="N[,N...]",
                  help="Concurrent requests per process to try (default 10).")
    @click.option("--part-size", "part_size", multiple=True, metavar="SIZE[,SIZE...]",
                  help="Multipart part sizes to try, e.g. 8MB,16MB (default 8MB).")
    @click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
                  help="Uploads per setting (settings alternate); medians are shown when above 1.")
    @click.option("--json", "json_output", is_flag=True, help="Print the results as one JSON document on stdout.")
    @click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.png",
                  help="Also draw MiB/s, CPU seconds and peak RSS per setting (needs matplotlib).")
    @click.option("-f", "--force", is_flag=True, help="No confirmation question before writing scratch objects.")
    @click.option("--scale", type=click.FloatRange(min=1e-6, max=1.0), default=1.0, hidden=True,
                  help="Shrink the checkpoint files (tests).")
    @app.handle_errors
    def bench(
        run_files: tuple[Path, ...],
        system_env: Path | None,
        experiments: tuple[str, ...],
        all_experiments: Path | None,
        demo: bool,
        models: int,
        network: str,
        processes: tuple[str, ...],
        concurrency: tuple[str, ...],
        part_size: tuple[str, ...],
        repeat: int,
        json_output: bool,
        plot_path: Path | None,
        force: bool,
        scale: float,
    ) -> None:
        """Upload synthetic models of realistic size with each engine setting and measure it.

        The models are written under a fresh scratch prefix drtransfer-bench/<id>/ in the run's local
        bucket, uploaded into the same prefix of its upload bucket once per setting, and every scratch
        object is deleted at the end (also on Ctrl-C). With several runs configured the first one's
        buckets are used.

        \b
        Examples:
          drtransfer bench --demo
          drtransfer bench --demo --processes 1,2 --concurrency 4,10 --repeat 3 --plot bench.png
          drtransfer bench run.env --models 8 --json
        """
        if importlib.util.find_spec("psutil") is None:
            raise ConfigError("drtransfer bench measures with psutil; install it: pip install 'drtransfer-cli[bench]'.")
        from drtransfer_cli.benchmarking import DemoPair, run_bench, spec_for_run

        cases = settings_grid(processes, concurrency, part_size)
        if plot_path is not None:  # find out now, not after a long bench
            if importlib.util.find_spec("matplotlib") is None:
                raise ConfigError("--plot needs matplotlib; install it with 'pip install drtransfer-cli[plot]'.")
            if not plot_path.resolve().parent.is_dir():
                raise ConfigError(f"Cannot write the plot to {plot_path}: its directory does not exist.")

        def log(message: str) -> None:
            click.echo(message, err=True)

        def go(spec: BenchSpec, exclude: Sequence[int]) -> BenchReport:
            try:
                return run_bench(spec, cases, repeat=repeat, exclude_pids=exclude, log=log)
            except (KeyboardInterrupt, Interrupted):
                raise Interrupted("Interrupted; the bench's scratch objects were deleted.") from None

        if demo:
            if run_files or system_env or experiments or all_experiments:
                raise click.UsageError("--demo uses its own servers; give no RUN_FILE or environment options.")
            log("Starting two SeaweedFS servers on 127.0.0.1 ...")
            with DemoPair.running() as pair:
                report = go(pair.spec(models=models, network=network, scale=scale), pair.pids())
        else:
            runs = app.load_runs(run_files, system_env=system_env, experiments=experiments,
                                 all_experiments=all_experiments)
            spec = spec_for_run(runs[0], models=models, network=network, scale=scale)
            size = app.human_bytes(estimate_bytes(models, network, scale))
            app.confirm(
                [
                    f"The bench writes {models} model(s) (about {size}) under s3://{spec.source_bucket}/drtransfer-bench/"
                    f" on the {spec.source.describe()},",
                    f"uploads them {len(cases) * repeat} time(s) to s3://{spec.target_bucket}/drtransfer-bench/ on the "
                    f"{spec.target.describe()}, and deletes what it wrote.",
                ],
                force=force,
            )
            report = go(spec, ())

        if json_output:
            click.echo(json.dumps(report.to_json(), indent=2))
        else:
            click.echo(table(report, repeat))
        if plot_path is not None:
            plot(report, plot_path)
            log(f"Plot written to {plot_path}.")
        failed = [m for m in report.measurements if m.status != "ok"]
        sys.exit(app.EXIT_FAILED if failed else app.EXIT_OK)


__all__ = ["register", "settings_grid", "table"]
