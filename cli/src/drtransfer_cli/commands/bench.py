"""``drtransfer bench``: how fast does the upload path go between my endpoints, per engine setting?

The work is in :mod:`drtransfer_cli.benchmarking`; this module parses the settings to try, asks before writing to
a user's buckets, and prints the table or the JSON document, the best setting, and the plot.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import statistics
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from drtransfer.engine import EngineSettings, MiB
from drtransfer.errors import ConfigError, Interrupted
from drtransfer.samples import NETWORK_SIZES
from drtransfer_cli import app, options

if TYPE_CHECKING:  # imported when the command runs: every command module loads at each start
    from matplotlib.figure import Figure

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


FIGURES = ("seconds", "mib_per_s", "objects_per_s", "cpu_seconds", "peak_rss_mib")


@dataclass
class SettingRuns:
    """The runs of one engine setting: each successful one's figures (``Measurement.to_json``) and how many
    failed."""

    settings: EngineSettings
    label: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    failed: int = 0

    def values(self, key: str) -> list[float]:
        return [float(run[key]) for run in self.runs]

    def median(self, key: str) -> float:
        return statistics.median(self.values(key))


def by_setting(measurements: Sequence[Measurement]) -> list[SettingRuns]:
    """One entry per setting, in the order tried."""
    out: dict[str, SettingRuns] = {}
    for m in measurements:
        entry = out.setdefault(m.label, SettingRuns(m.settings, m.label))
        if m.status == "ok":
            entry.runs.append(m.to_json())
        else:
            entry.failed += 1
    return list(out.values())


def medians(measurements: Sequence[Measurement]) -> list[tuple[str, dict[str, float]]]:
    """Per setting (in the order tried), the median of each figure over its successful runs."""
    return [(s.label, {k: s.median(k) for k in FIGURES}) for s in by_setting(measurements) if s.runs]


def best_setting(settings: Sequence[SettingRuns]) -> SettingRuns | None:
    """The setting with the highest median MiB/s (the first tried of equals); None if every run failed."""
    measured = [s for s in settings if s.runs]
    return max(measured, key=lambda s: s.median("mib_per_s")) if measured else None


def best_line(report: BenchReport) -> str | None:
    """``best: processes=2 concurrency=10 part-size=16MiB: 142.3 MiB/s (median of 2 runs)``; None if every run
    failed."""
    best = best_setting(by_setting(report.measurements))
    if best is None:
        return None
    runs = len(best.runs)
    setting = best.settings
    return (
        f"best: processes={setting.processes} concurrency={setting.concurrency} "
        f"part-size={setting.part_size / MiB:g}MiB: {best.median('mib_per_s'):.1f} MiB/s "
        f"({'1 run' if runs == 1 else f'median of {runs} runs'})"
    )


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


# The picture: one row per setting (horizontal bars), so labels never collide; 1300 px wide, and as tall as
# its rows need within PLOT_HEIGHT.
PLOT_DPI = 100
PLOT_WIDTH = 13.0  # inches
PLOT_HEIGHT = (3.2, 16.0)  # inches, min and max
ROW_HEIGHT = 0.3  # inches per setting
FRAME_HEIGHT = 1.6  # inches of title, axis labels and ticks
PANELS = (  # figure, axis label, value format
    ("mib_per_s", "throughput (MiB/s)\nhigher is better", "{:.1f}"),
    ("cpu_seconds", "client CPU time per upload (CPU-s)\nlower is better", "{:.2f}"),
    ("peak_rss_mib", "peak RSS of the client processes (MiB)\nlower is better", "{:.0f}"),
)
BAR_COLOUR, BEST_COLOUR, FAILED_COLOUR, STRIPE_COLOUR = "#8fb3d9", "#e8710a", "#c62828", "#f0f0f0"
MIN_ROWS = 3  # fewer settings get empty space around them rather than bars as thick as the picture


def _title(report: BenchReport, settings: Sequence[SettingRuns]) -> str:
    spec, document = report.spec, report.to_json()
    what = (
        f"drtransfer bench: uploading {spec.models} {spec.network} model(s) "
        f"({app.human_bytes(report.model_bytes)} in {report.model_objects} objects per upload) with "
        f"{len(settings)} engine setting(s)"
    )
    kind = "server-side copy possible" if spec.same_endpoint else "cross-endpoint"
    where = textwrap.fill(f"{document['source']} → {document['target']} ({kind})", width=170)
    counts = sorted({len(s.runs) for s in settings if s.runs})
    if not counts or counts[-1] == 1:
        how = "bars: one run per setting (--repeat N adds medians and spread)"
    else:
        n = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
        how = f"bars: median of {n} runs per setting; whiskers: slowest to fastest run; dots: each run"
    return f"{what}\n{where}\n{how}"


def build_figure(report: BenchReport) -> Figure:
    """Throughput, client CPU and peak RSS per setting; the setting with the highest median MiB/s in colour."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("--plot needs matplotlib; install it with 'pip install drtransfer-cli[plot]'.") from None
    settings = by_setting(report.measurements)
    best = best_setting(settings)
    if best is None:
        raise ConfigError("Nothing to plot: every upload of the bench failed.")
    rows = list(range(len(settings)))
    height = min(max(FRAME_HEIGHT + ROW_HEIGHT * len(settings), PLOT_HEIGHT[0]), PLOT_HEIGHT[1])
    row_points = (height - FRAME_HEIGHT) / len(settings) * 72
    fontsize = min(9.0, max(5.0, row_points * 0.55))
    fig = Figure(figsize=(PLOT_WIDTH, height), dpi=PLOT_DPI, layout="constrained")
    axes = fig.subplots(1, len(PANELS), sharey=True, gridspec_kw={"width_ratios": [1.6, 1, 1]})
    labels = [s.label + (f" ({s.failed} of {s.failed + len(s.runs)} failed)" if s.failed else "") for s in settings]
    for ax, (key, axis_label, number) in zip(axes, PANELS, strict=True):
        top = max(max(s.values(key)) for s in settings if s.runs)
        for row, setting in zip(rows, settings, strict=True):
            if row % 2 and len(settings) > MIN_ROWS:  # stripes lead the eye along a row across the panels
                ax.axhspan(row - 0.5, row + 0.5, color=STRIPE_COLOUR, zorder=0, linewidth=0)
            if not setting.runs:
                ax.text(top * 0.03, row, "every run failed", va="center", fontsize=fontsize, color=FAILED_COLOUR)
                continue
            values, median = setting.values(key), setting.median(key)
            colour = BEST_COLOUR if setting is best else BAR_COLOUR
            ax.barh(row, median, height=0.6, color=colour)
            if len(values) > 1:
                spread = [[median - min(values)], [max(values) - median]]
                ax.errorbar(median, row, xerr=spread, fmt="none", ecolor="#333333", elinewidth=1, capsize=3)
                ax.scatter(values, [row] * len(values), s=10, color="#333333", zorder=3)
            text = number.format(median) + ("  ◀ best" if key == "mib_per_s" and setting is best else "")
            ax.text(
                max(values) + top * 0.03,
                row,
                text,
                va="center",
                fontsize=fontsize,
                color=BEST_COLOUR if setting is best else "black",
                fontweight="bold" if setting is best else "normal",
            )
        ax.set_xlim(0, top * (1.3 if key == "mib_per_s" else 1.2))
        ax.set_xlabel(axis_label)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    first = axes[0]
    first.set_yticks(rows, labels, fontsize=fontsize)
    pad = max(0, MIN_ROWS - len(settings)) / 2
    first.set_ylim(len(settings) - 0.5 + pad, -0.5 - pad)  # the first setting tried on top
    # A column header above the setting labels: a rotated label would not fit a short picture.
    first.set_ylabel("processes × concurrency, part size", rotation=0, ha="right", va="bottom", fontsize=fontsize)
    first.yaxis.set_label_coords(-0.01, 1.0)
    for tick, setting in zip(first.get_yticklabels(), settings, strict=True):
        if setting is best:
            tick.set_color(BEST_COLOUR)
            tick.set_fontweight("bold")
    fig.suptitle(_title(report, settings), fontsize=10)
    return fig


def plot(report: BenchReport, path: Path) -> None:
    """Write :func:`build_figure` as a PNG of PLOT_WIDTH x (PLOT_HEIGHT range) inches at PLOT_DPI."""
    build_figure(report).savefig(path, dpi=PLOT_DPI)


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
                  help="Concurrent transfers per process to try (default 10).")
    @click.option("--part-size", "part_size", multiple=True, metavar="SIZE[,SIZE...]",
                  help="Multipart part sizes to try, e.g. 8MB,16MB (default 8MB).")
    @click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
                  help="Uploads per setting (settings alternate); medians are shown when above 1.")
    @click.option("--json", "json_output", is_flag=True, help="Print the results as one JSON document on stdout.")
    @click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.png",
                  help="Also draw MiB/s, CPU seconds and peak RSS per setting, the best one marked (needs matplotlib).")
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
        best = best_line(report)
        if best is not None:  # on stderr with --json: stdout stays one JSON document
            click.echo(best, err=json_output)
        if plot_path is not None:
            plot(report, plot_path)
            log(f"Plot written to {plot_path}.")
        failed = [m for m in report.measurements if m.status != "ok"]
        sys.exit(app.EXIT_FAILED if failed else app.EXIT_OK)


__all__ = ["best_line", "build_figure", "plot", "register", "settings_grid", "table"]
