"""The transfer progress view on a terminal: a block of lines redrawn in place, the total first (it never
moves), then one line per model.

Each model line says what the model is doing: ``queued`` (no event yet), its bar, bytes, rate, its own
elapsed time (first event to its last commit) and an ETA once a rate is known, ``retrying``, a
``waiting for URL: error, retry N in S s`` line while the engine backs off (when ``on_retry`` passes
``delay`` and ``endpoint``), ``done``, ``already there`` (every object skipped: counted as done, so the
total reaches 100% on a re-run) or ``FAILED``. A refresh thread redraws twice a second, so elapsed
times and countdowns tick while nothing moves.

The view writes with ``os.write`` on the stream's file descriptor: the refresh thread then never holds
the ``sys.stderr`` buffer lock, which a worker process forked at that moment would inherit locked.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO, cast

from tqdm.std import Bar

from drtransfer.engine import TransferSubscriber
from drtransfer.operations import DeleteObject, ModelPlan, ModelResult, Operation, OperationResult
from drtransfer.runconfig import RunConfig

REFRESH_SECONDS = 0.5
RATE_WINDOW = 5.0  # seconds of history a rate is measured over (a stall shows within seconds)
RATE_MIN_SPAN = 1.0  # no rate (and so no ETA) before this much history
MIN_BAR = 10
MAX_BAR = 50  # wider bars tell no more, and push the figures far from the labels
MIN_LABEL = 8
# Widths of the columns right of the bar: "100%", "99.9 MiB/s", "12:34", "already there".
PCT_WIDTH, RATE_WIDTH, ELAPSED_WIDTH, TAIL_WIDTH = 4, 10, 5, 13
UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def terminal_size(stream: TextIO) -> tuple[int, int]:
    """Columns and rows of the terminal ``stream`` writes to; 80x24 when it is not a terminal."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return 80, 24
    return size.columns or 80, size.lines or 24


def terminal_columns(stream: TextIO) -> int:
    return terminal_size(stream)[0]


def short_labels(runs: Sequence[RunConfig]) -> dict[str, str]:
    """The view's label of each run (by run key): the experiment name when there is one (the full label
    ``experiment NAME (prefix)`` would leave little room for the bar at 80 columns), else the label."""
    return {run.key: run.experiment or run.label for run in runs}


def unit_of(size: float) -> tuple[int, str]:
    """The divisor and unit name ``size`` is best shown in."""
    divisor = 1
    for unit in UNITS:
        if abs(size) < 1024 * divisor or unit == UNITS[-1]:
            return divisor, unit
        divisor *= 1024
    raise AssertionError("unreachable")


def amount(value: float, divisor: int, like: float | None = None) -> str:
    """``value`` in units of ``divisor``, with one decimal below 100 units (of ``like`` when given)."""
    scale = abs(like if like is not None else value) / divisor
    return f"{value / divisor:.0f}" if divisor == 1 or scale >= 100 else f"{value / divisor:.1f}"


def sizes_text(done: int, total: int) -> str:
    """``"12.3/136 MiB"``: both in the total's unit and precision, so the text keeps its width as bytes
    arrive."""
    divisor, unit = unit_of(total)
    return f"{amount(done, divisor, total)}/{amount(total, divisor)} {unit}"


def rate_text(rate: float | None) -> str:
    if rate is None:
        return ""
    divisor, unit = unit_of(rate)
    return f"{amount(rate, divisor)} {unit}/s"


def duration_text(seconds: float) -> str:
    """``"0:07"``, ``"12:34"``, ``"1:02:03"``."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` columns, cut in the middle: labels of runs often differ at the end."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = width // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def short_forms(labels: Sequence[str], width: int) -> dict[str, str]:
    """Each label in ``width`` columns: cut in the middle, else (when that makes two alike) keeping
    the end, the start, or the part from where the labels start to differ; the first of these that
    keeps the labels apart."""
    long = [label for label in labels if len(label) > width]
    low, high = (min(long), max(long)) if long else ("", "")
    same = next((i for i, (a, b) in enumerate(zip(low, high, strict=False)) if a != b), len(low))
    cuts: tuple[Callable[[str], str], ...] = (
        lambda text: shorten(text, width),
        lambda text: text if len(text) <= width else "…" + text[len(text) - width + 1 :],
        lambda text: clip(text, width),
        lambda text: text if len(text) <= width else clip("…" + text[max(0, same - 2) :], width),
    )
    for cut in cuts:
        forms = {label: cut(label) for label in labels}
        if len(set(forms.values())) == len(forms):
            return forms
    return {label: shorten(label, width) for label in labels}


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


class Rate:
    """Bytes per second over the last :data:`RATE_WINDOW` seconds of samples; None until
    :data:`RATE_MIN_SPAN` seconds of history exist."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, value: int) -> None:
        self.samples.append((now, value))
        while len(self.samples) > 2 and now - self.samples[1][0] >= RATE_WINDOW:
            self.samples.popleft()

    def per_second(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, v0), (t1, v1) = self.samples[0], self.samples[-1]
        if t1 - t0 < RATE_MIN_SPAN:
            return None
        return max(0.0, (v1 - v0) / (t1 - t0))


@dataclass
class RetryNote:
    """The last retry of a model: what failed, and when the engine tries again (if it said)."""

    attempt: int
    error: str
    at: float
    delay: float | None = None
    endpoint: str | None = None

    def text(self, now: float) -> str:
        error = self.error.strip().splitlines()[0].rstrip(".") if self.error.strip() else "failed"
        if self.delay is None or self.endpoint is None:
            return f"retrying (retry {self.attempt}): {error}"
        left = self.delay - (now - self.at)
        if left <= 0:
            return f"retrying {self.endpoint} (retry {self.attempt}): {error}"
        return f"waiting for {self.endpoint}: {error}, retry {self.attempt} in {left:.0f} s"


@dataclass
class ModelLine:
    """What the view knows of one model."""

    label: str
    total: int
    moved: int = 0  # bytes the engine reported moving (negative deltas rewind it)
    skipped: int = 0  # bytes of objects already at the target
    started: float | None = None  # first event of the model
    finished: float | None = None
    status: str = "queued"  # queued, running, done, already there, FAILED
    retry: RetryNote | None = None
    rate: Rate = field(default_factory=Rate)

    @property
    def done(self) -> int:
        if self.status in ("done", "already there"):
            return self.total
        return max(0, min(self.total, self.moved + self.skipped))

    def begin(self, now: float) -> None:
        if self.started is None:
            self.started = now
            self.status = "running"

    def elapsed(self, now: float) -> float | None:
        if self.started is None:
            return None
        return (self.finished or now) - self.started


def pct_text(done: int, total: int, complete: bool) -> str:
    if total <= 0:
        return "100%" if complete else "0%"
    return f"{100 * done // total}%"


def bar_text(done: int, total: int, width: int, fill: str, empty: str) -> str:
    """tqdm's bar (whole cells only: ``empty`` then ``fill`` as its charset)."""
    fraction = 1.0 if total <= 0 else max(0, min(done, total)) / total
    return format(Bar(fraction, width, charset=empty + fill), "")


def eta_text(remaining: int, rate: float | None) -> str:
    """``"ETA 0:12"`` once a rate is known and something is left, else nothing."""
    if rate is None or rate <= 0 or remaining <= 0:
        return ""
    return f"ETA {duration_text(remaining / rate)}"


class ProgressView(TransferSubscriber):
    """The view as a transfer subscriber; :meth:`render` is the frame at a time and a width."""

    def __init__(
        self, labels: Mapping[str, str], stream: TextIO | None = None, *, refresh: float = REFRESH_SECONDS
    ) -> None:
        self.labels = labels
        self.stream = stream or sys.stderr
        self.refresh = refresh
        self.models: dict[str, ModelLine] = {}
        self.started: float | None = None
        self.finished: float | None = None
        self.total_rate = Rate()
        self.lock = threading.RLock()
        self.drawn = 0  # lines of the last frame on the screen
        self.shown: dict[str, str] = {}  # label -> as the frame shows it (within the label column)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        encoding = (getattr(self.stream, "encoding", None) or "").lower().replace("-", "")
        self.fill, self.empty = ("█", "░") if encoding.startswith("utf") else ("#", "-")

    # ---- events (the engine calls them in the parent process) ----------------------------------------

    def on_start(self, plans: Sequence[ModelPlan], **kwargs: Any) -> None:
        with self.lock:
            self.started = time.monotonic()
            for plan in plans:
                label = self.labels.get(plan.model_id, plan.model_id)
                self.models[plan.model_id] = ModelLine(label, plan.total_bytes)
            self.draw()
        self.thread = threading.Thread(target=self._refresh_loop, name="drtransfer-progress", daemon=True)
        self.thread.start()

    def on_progress(self, model_id: str, delta: int, **kwargs: Any) -> None:
        with self.lock:
            line = self.models.get(model_id)
            if line is not None:
                line.begin(time.monotonic())
                line.moved += delta
                if delta > 0:
                    line.retry = None

    def on_retry(self, model_id: str, operation: Operation, attempt: int, error: str, **kwargs: Any) -> None:
        delay, endpoint = kwargs.get("delay"), kwargs.get("endpoint")
        with self.lock:
            line = self.models.get(model_id)
            if line is not None:
                now = time.monotonic()
                line.begin(now)
                line.retry = RetryNote(
                    attempt,
                    str(error),
                    now,
                    float(delay) if isinstance(delay, int | float) else None,
                    str(endpoint) if endpoint else None,
                )

    def on_operation(self, model_id: str, result: OperationResult, **kwargs: Any) -> None:
        with self.lock:
            line = self.models.get(model_id)
            if line is None:
                return
            line.begin(time.monotonic())
            if result.status == "skipped" and not isinstance(result.operation, DeleteObject):
                line.skipped += result.operation.size
            if result.status != "failed":
                line.retry = None

    def on_model_done(self, result: ModelResult, **kwargs: Any) -> None:
        with self.lock:
            line = self.models.get(result.model_id)
            if line is None:
                return
            now = time.monotonic()
            line.begin(now)
            line.finished = now
            line.retry = None
            written = [r for r in result.operations if not isinstance(r.operation, DeleteObject)]
            if result.status == "failed":
                line.status = "FAILED"
            elif written and all(r.status == "skipped" for r in written):
                line.status = "already there"
            else:
                line.status = "done"
            if all(m.finished is not None for m in self.models.values()):
                self.finished = now

    # ---- drawing ---------------------------------------------------------------------------------------

    def _refresh_loop(self) -> None:
        while not self.stopping.wait(self.refresh):
            with self.lock:
                self.draw()

    def close(self) -> None:
        """Stop the refresh thread and leave the last frame on the screen (idempotent)."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        with self.lock:
            if self.started is not None:
                self.draw()

    def echo(self, text: str) -> None:
        """Print ``text`` above the view (``-v`` retry lines) without breaking the block."""
        with self.lock:
            if self.drawn:
                self._write(f"\x1b[{self.drawn}A\r\x1b[J")
                self.drawn = 0
            self._write(text + "\n")
            if self.started is not None:
                self.draw()

    def draw(self) -> None:
        columns, rows = terminal_size(self.stream)
        lines = self.render(time.monotonic(), columns, rows)
        up = f"\x1b[{self.drawn}A\r" if self.drawn else ""
        self._write(up + "".join(f"\x1b[2K{line}\n" for line in lines) + "\x1b[J")
        self.drawn = len(lines)

    def _write(self, text: str) -> None:
        data = text.encode(getattr(self.stream, "encoding", None) or "utf-8", errors="replace")
        try:
            fd = self.stream.fileno()
        except (OSError, ValueError, AttributeError):
            self.stream.write(text)
            self.stream.flush()
            return
        while data:
            written = os.write(fd, data)
            data = data[written:]

    def render(self, now: float, columns: int, rows: int = 1000) -> list[str]:
        """The frame at ``now`` for a terminal ``columns`` wide and ``rows`` high: every line at most
        ``columns - 1`` long (no terminal wraps it), bars starting in the same column."""
        with self.lock:
            for model in self.models.values():
                if model.started is not None and model.finished is None:  # a queued model's wait is no rate
                    model.rate.add(now, model.moved)
            total = sum(m.total for m in self.models.values())
            done = sum(m.done for m in self.models.values())
            self.total_rate.add(now, sum(m.moved for m in self.models.values()))
            width = max(20, columns - 1)
            sizes_width = max(len(sizes_text(t, t)) for t in [total, *(m.total for m in self.models.values())])
            elapsed_width = max(ELAPSED_WIDTH, len(duration_text(self._elapsed(now))))
            right = PCT_WIDTH + sizes_width + RATE_WIDTH + elapsed_width + TAIL_WIDTH + 5  # 5 separators
            labels = ["total", *(m.label for m in self.models.values())]
            label_width = min(max(len(text) for text in labels), max(MIN_LABEL, width - right - 1 - MIN_BAR))
            bar_width = max(1, min(MAX_BAR, width - right - label_width - 1))
            self.shown = short_forms(labels, label_width)
            layout = (label_width, bar_width, sizes_width, elapsed_width, width)

            finished = self.finished is not None
            total_rate = None if finished else self.total_rate.per_second()
            tail = eta_text(total - done, total_rate) or ("done" if finished else "")
            frame = [
                self._line(layout, "total", done, total, finished, total_rate, self._elapsed(now), tail),
            ]
            models = list(self.models.values())
            room = max(1, rows - 2)  # the total, the model lines, and the cursor's line below
            shown = models if len(models) <= room else models[: room - 1]
            for model in shown:
                frame.append(self._model_line(layout, model, now))
            if len(shown) < len(models):
                rest = models[len(shown) :]
                counts = {s: sum(1 for m in rest if m.status == s) for s in dict.fromkeys(m.status for m in rest)}
                summary = ", ".join(f"{n} {s}" for s, n in counts.items())
                frame.append(clip(f"… {len(rest)} more model(s): {summary}", width))
            return frame

    def _elapsed(self, now: float) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or now) - self.started

    def _model_line(self, layout: tuple[int, int, int, int, int], model: ModelLine, now: float) -> str:
        label_width, _, _, _, width = layout
        retry = model.retry if model.finished is None else None
        if retry is not None and retry.delay is not None and retry.endpoint is not None:
            # The wait replaces the bar and the figures: the endpoint, the error and the countdown
            # need the room.
            head = f"{self.shown.get(model.label, model.label):<{label_width}} "
            return head + fit_note(retry, now, width - len(head))
        if retry is not None:
            tail = "retrying"
        elif model.status == "running":
            tail = eta_text(model.total - model.done, model.rate.per_second())
        else:
            tail = model.status  # queued, done, already there, FAILED
        rate = model.rate.per_second() if model.status == "running" else None
        complete = model.status in ("done", "already there")
        return self._line(layout, model.label, model.done, model.total, complete, rate, model.elapsed(now), tail)

    def _line(
        self,
        layout: tuple[int, int, int, int, int],
        label: str,
        done: int,
        total: int,
        complete: bool,
        rate: float | None,
        elapsed: float | None,
        tail: str,
    ) -> str:
        label_width, bar_width, sizes_width, elapsed_width, width = layout
        cells = [
            f"{self.shown.get(label, label):<{label_width}}",
            f"{pct_text(done, total, complete):>{PCT_WIDTH}}",
            bar_text(done, total, bar_width, self.fill, self.empty),
            f"{sizes_text(done, total):>{sizes_width}}",
            f"{rate_text(rate):>{RATE_WIDTH}}",
            f"{duration_text(elapsed) if elapsed is not None else '':>{elapsed_width}}",
            tail,
        ]
        return clip(" ".join(cells).rstrip(), width)


class AboveView(io.TextIOBase):
    """A text stream whose lines :meth:`ProgressView.echo` prints above the view (``-v``'s event log)."""

    def __init__(self, view: ProgressView) -> None:
        self.view = view
        self.pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.view.echo(line)
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.view.echo(self.pending)
            self.pending = ""


def above(view: ProgressView) -> TextIO:
    """:class:`AboveView` typed as the text stream the log notifier takes (it writes and flushes only)."""
    return cast(TextIO, AboveView(view))


def fit_note(note: RetryNote, now: float, width: int) -> str:
    """The retry note in ``width`` columns, shortening the error first: the endpoint and the countdown
    are what the user acts on."""
    text = note.text(now)
    if len(text) <= width:
        return text
    error = note.error.strip().splitlines()[0].rstrip(".") if note.error.strip() else "failed"
    spare = len(error) - (len(text) - width)
    if spare >= 4:
        shortened = RetryNote(note.attempt, clip(error, spare), note.at, note.delay, note.endpoint)
        return shortened.text(now)
    left = max(0.0, (note.delay or 0.0) - (now - note.at))
    return clip(f"waiting for {note.endpoint}, retry {note.attempt} in {left:.0f} s", width)
