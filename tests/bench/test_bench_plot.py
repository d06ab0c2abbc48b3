"""The ``drtransfer bench`` summary: the best-setting line and the ``--plot`` picture, built from reports made
here (no bench runs)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import matplotlib  # noqa: F401  (installed by ./dev: a missing matplotlib fails here, never skips)
import pytest

from drtransfer.endpoints import Endpoint
from drtransfer.engine import EngineSettings, MiB
from drtransfer_cli.benchmarking import BenchReport, BenchSpec, Measurement, case_label
from drtransfer_cli.commands.bench import best_line, build_figure, plot

Setting = tuple[int, int, int]  # processes, concurrency, part size in MiB


def make_report(runs: dict[Setting, list[float]], *, failed: dict[Setting, int] | None = None) -> BenchReport:
    """A report whose setting ``s`` was measured at each MiB/s of ``runs[s]`` (repeats alternate, as the bench
    runs them); ``failed[s]`` more runs of ``s`` failed."""
    spec = BenchSpec(
        source=Endpoint("local", "http://127.0.0.1:9000", "us-east-1", None),
        source_bucket="bench-local",
        target=Endpoint("upload", "http://127.0.0.1:9001", "us-east-1", None),
        target_bucket="bench-upload",
        models=2,
        network="shallow",
    )
    report = BenchReport("drtransfer-bench/20240101T000000Z-00000000/", spec, model_bytes=20 * MiB, model_objects=28)
    failed = failed or {}
    rounds = max(len(values) + failed.get(s, 0) for s, values in runs.items())
    for rep in range(rounds):
        for (processes, concurrency, part), values in runs.items():
            settings = EngineSettings(processes=processes, concurrency=concurrency, part_size=part * MiB)
            if rep < len(values):
                seconds = 20 / values[rep]  # 20 MiB moved at values[rep] MiB/s
                cpu = 0.5 + 0.1 * rep + processes
                report.measurements.append(
                    Measurement(settings, rep + 1, seconds, 20 * MiB, 28, cpu, (100 + 40 * processes) * MiB, 90 * MiB)
                )
            elif rep < len(values) + failed.get((processes, concurrency, part), 0):
                report.measurements.append(
                    Measurement(settings, rep + 1, 1.0, 0, 0, 0.1, 0, 0, status="failed", error="SlowDown")
                )
    return report


def grid(processes: list[int], concurrency: list[int], parts: list[int]) -> list[Setting]:
    return [(p, c, s) for p in processes for c in concurrency for s in parts]


SIXTEEN = grid([1, 2], [2, 4, 8, 10], [8, 16])


def one_setting() -> BenchReport:
    return make_report({(1, 10, 8): [7.0, 9.0]})


def sixteen_settings() -> BenchReport:
    return make_report({s: [10.0 + i, 12.0 + i] for i, s in enumerate(SIXTEEN)})


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# ---- the best setting -------------------------------------------------------------------------------


def test_best_line_names_the_setting_with_the_highest_median() -> None:
    report = make_report(
        {
            (1, 4, 8): [30.0, 1.0, 1.0],  # the fastest single run, but a median of 1
            (2, 10, 16): [5.0, 6.0, 4.0],  # the highest median
            (2, 4, 8): [4.5, 4.0, 5.5],
        }
    )
    assert best_line(report) == "best: processes=2 concurrency=10 part-size=16MiB: 5.0 MiB/s (median of 3 runs)"


def test_best_line_counts_only_successful_runs() -> None:
    report = make_report({(1, 10, 8): [7.25], (2, 10, 8): [3.0]}, failed={(1, 10, 8): 1})
    assert best_line(report) == "best: processes=1 concurrency=10 part-size=8MiB: 7.2 MiB/s (1 run)"


# ---- the picture ------------------------------------------------------------------------------------


def test_axes_carry_units_and_the_title_says_what_was_measured() -> None:
    fig = build_figure(make_report({(1, 10, 8): [7.0, 9.0], (2, 10, 8): [5.0, 6.0]}))
    throughput, cpu, rss = fig.axes
    assert "MiB/s" in throughput.get_xlabel()
    assert "CPU-s" in cpu.get_xlabel()
    assert "MiB" in rss.get_xlabel() and "RSS" in rss.get_xlabel()
    assert "processes" in throughput.get_ylabel() and "part size" in throughput.get_ylabel()
    title = fig.get_suptitle()
    for fragment in ("2 shallow model(s)", "s3://bench-local", "s3://bench-upload", "http://127.0.0.1:9001"):
        assert fragment in title


def rows_top_first(ax: Any) -> list[tuple[float, str]]:
    """The (y, label) of each row of ``ax``, from the top of the picture down."""
    rows = sorted(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels()), strict=True))
    return [(float(y), text) for y, text in (rows if ax.yaxis_inverted() else rows[::-1])]


def bar_at(ax: Any, row: float) -> Any:
    from matplotlib.container import BarContainer

    bars = [bar for container in ax.containers if isinstance(container, BarContainer) for bar in container]
    [bar] = [bar for bar in bars if bar.get_y() + bar.get_height() / 2 == pytest.approx(row)]
    return bar


def test_one_labelled_row_per_setting_in_the_order_tried() -> None:
    fig = build_figure(sixteen_settings())
    labels = [case_label(EngineSettings(processes=p, concurrency=c, part_size=s * MiB)) for p, c, s in SIXTEEN]
    assert [text for _, text in rows_top_first(fig.axes[0])] == labels


def row_points(ax: Any) -> list[tuple[float, float]]:
    """Every (x, y) the axes draws through lines, markers and line collections (not bars)."""
    points: list[tuple[float, float]] = []
    for line in ax.lines:
        points += [(float(x), float(y)) for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)]
    for collection in ax.collections:
        if hasattr(collection, "get_segments"):  # whiskers
            points += [(float(x), float(y)) for segment in collection.get_segments() for x, y in segment]
        else:  # markers
            points += [(float(x), float(y)) for x, y in collection.get_offsets()]
    return points


def test_each_setting_shows_its_median_and_the_spread_of_its_runs() -> None:
    runs = {(1, 10, 8): [7.0, 9.0, 8.5], (2, 10, 8): [5.0, 6.5, 6.0]}
    throughput = build_figure(make_report(runs)).axes[0]
    points = row_points(throughput)
    for (row, _), values in zip(rows_top_first(throughput), runs.values(), strict=True):
        assert bar_at(throughput, row).get_width() == pytest.approx(sorted(values)[1])  # the bar is the median
        at_row = [x for x, y in points if y == pytest.approx(row)]
        assert min(at_row) == pytest.approx(min(values))  # the spread reaches the slowest run ...
        assert max(at_row) == pytest.approx(max(values))  # ... and the fastest


def test_the_best_setting_is_marked() -> None:
    fig = build_figure(make_report({(1, 10, 8): [7.0, 9.0], (2, 10, 8): [12.0, 11.0], (2, 4, 8): [3.0, 4.0]}))
    throughput = fig.axes[0]
    colours = [tuple(bar_at(throughput, row).get_facecolor()) for row, _ in rows_top_first(throughput)]
    assert colours[1] != colours[0] and colours[0] == colours[2]  # the second setting tried stands out
    assert any("best" in text.get_text() for text in throughput.texts)


def test_png_size_stays_within_bounds_and_grows_with_the_settings(tmp_path: Path) -> None:
    one, sixteen = tmp_path / "one.png", tmp_path / "sixteen.png"
    plot(one_setting(), one)
    plot(sixteen_settings(), sixteen)
    (w1, h1), (w16, h16) = png_size(one), png_size(sixteen)
    for width, height in ((w1, h1), (w16, h16)):
        assert 800 <= width <= 1600
        assert 300 <= height <= 1600
    assert h16 > h1  # a row per setting: more settings, a taller picture
    assert h1 < w1  # one setting is a short strip, not a tall empty frame


def shown_ticks(locations: Any, labels: Any, limits: tuple[float, float]) -> list[Any]:
    """The tick labels drawn: the locator also yields ticks just outside the axes' limits. Axes sharing the
    first one's rows have no row labels of their own."""
    low, high = sorted(limits)
    if not labels:
        return []
    return [label for location, label in zip(locations, labels, strict=True) if low <= location <= high]


@pytest.mark.parametrize("report", [pytest.param(one_setting(), id="1"), pytest.param(sixteen_settings(), id="16")])
def test_labels_do_not_overlap_and_stay_in_the_picture(report: BenchReport) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = build_figure(report)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    picture = fig.bbox
    texts = [ax.xaxis.label for ax in fig.axes] + [fig.axes[0].yaxis.label]
    groups = [texts] + [shown_ticks(ax.get_xticks(), ax.get_xticklabels(), ax.get_xlim()) for ax in fig.axes]
    groups += [shown_ticks(ax.get_yticks(), ax.get_yticklabels(), ax.get_ylim()) for ax in fig.axes]
    for group in groups:
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in group if t.get_visible() and t.get_text()]
        for i, (text, box) in enumerate(boxes):
            assert picture.x0 <= box.x0 and box.x1 <= picture.x1 and picture.y0 <= box.y0 and box.y1 <= picture.y1, text
            for other, second in boxes[i + 1 :]:
                assert not box.overlaps(second), (text, other)
