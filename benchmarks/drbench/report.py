"""RESULTS.md and results.png from the JSON lines a benchmark run wrote (``results.jsonl``)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drbench.tools import BY_NAME
from drbench.workloads import FULL, QUICK, Workload

FIGURES = ("seconds", "mib_per_s", "objects_per_s", "cpu_seconds", "peak_rss_mib", "peak_pss_mib", "server_cpu_seconds")
OPTIONAL = ("requests",)  # runs recorded before the harness counted requests lack it
RSS_LIMIT_MIB = 400
RSS_LIMIT_17_MIB = 300


@dataclass
class Summary:
    workload: str
    tool: str
    ok: int
    failed: int
    median: dict[str, float]
    low: dict[str, float]
    high: dict[str, float]
    errors: list[str]


def load(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    meta: dict[str, Any] = {}
    runs: list[dict[str, Any]] = []
    profiles: list[dict[str, Any]] = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if record["type"] == "meta":
            meta = meta or record  # a resumed run keeps its first description
        elif record["type"] == "run":
            runs.append(record)
        elif record["type"] == "profile":
            profiles.append(record)
    return meta, runs, profiles


def summarize(runs: Iterable[dict[str, Any]]) -> dict[tuple[str, str], Summary]:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        grouped.setdefault((run["workload"], run["tool"]), []).append(run)
    out = {}
    for key, rows in grouped.items():
        good = [r for r in rows if r["status"] == "ok"]
        figures = [*FIGURES, *(f for f in OPTIONAL if good and all(f in r for r in good))]
        out[key] = Summary(
            key[0], key[1], len(good), len(rows) - len(good),
            {f: statistics.median(r[f] for r in good) for f in figures} if good else {},
            {f: min(r[f] for r in good) for f in figures} if good else {},
            {f: max(r[f] for r in good) for f in figures} if good else {},
            [r["error"] for r in rows if r["status"] != "ok" and r.get("error")],
        )
    return out


def cpu_per_gib(summary: Summary, payload: dict[str, int]) -> float | None:
    """Client CPU-seconds per GiB moved (the figure issue 17 compares tools by)."""
    size = payload.get("bytes", 0)
    return summary.median["cpu_seconds"] / (size / 2**30) if size and summary.median else None


def workloads_of(meta: dict[str, Any]) -> list[Workload]:
    pool = QUICK if meta.get("quick") else FULL
    return [w for w in pool if w.name in meta.get("workloads", [w.name for w in pool])]


def speedup(s: dict[tuple[str, str], Summary], workload: str, peer: str) -> float | None:
    """How many times faster deepracer-transfer moved the same payload (peer seconds / ours)."""
    ours, theirs = s.get((workload, "drtransfer")), s.get((workload, peer))
    if not ours or not theirs or not ours.median or not theirs.median:
        return None
    return theirs.median["seconds"] / ours.median["seconds"]


def fastest_peer(s: dict[tuple[str, str], Summary], workload: str, among: Sequence[str] | None = None) -> str | None:
    peers = [t for (w, t), summary in s.items() if w == workload and BY_NAME[t].peer and summary.median
             and (among is None or t in among)]
    return min(peers, key=lambda t: s[(workload, t)].median["seconds"]) if peers else None


@dataclass
class Target:
    issue: str
    text: str
    measured: str
    met: bool | None  # None: not measured


def targets(s: dict[tuple[str, str], Summary]) -> list[Target]:
    out: list[Target] = []

    def ratio_target(issue: str, text: str, workload: str, peer: str | None, needed: float) -> None:
        value = speedup(s, workload, peer) if peer else None
        if value is None:
            out.append(Target(issue, text, "not measured", None))
        else:
            out.append(Target(issue, text, f"{value:.2f}x ({BY_NAME[peer].label if peer else ''})", value >= needed))

    ratio_target("8", "W1: >= 3x faster than DRfC's flow", "W1", "drfc", 3.0)
    cross_peer = fastest_peer(s, "W1", ["rclone"])  # the only peer that copies between two endpoints
    ratio_target("8", "W1: >= 1.2x faster than the fastest cross-endpoint peer", "W1", cross_peer, 1.2)
    ratio_target("8", "W2: at least as fast as the fastest peer", "W2", fastest_peer(s, "W2"), 1.0)
    ratio_target("8", "W3: within 10% of the fastest peer", "W3", fastest_peer(s, "W3"), 1 / 1.1)
    w3 = s.get(("W3", "drtransfer"))
    out.append(Target("8", f"W3: peak RSS < {RSS_LIMIT_MIB} MiB",
                      f"{w3.median['peak_rss_mib']:.0f} MiB" if w3 and w3.median else "not measured",
                      w3.median["peak_rss_mib"] < RSS_LIMIT_MIB if w3 and w3.median else None))
    ratio_target("8", "W4: >= 1.5x faster than awscli", "W4", "awscli", 1.5)
    gap = speedup(s, "W4", "s5cmd")
    out.append(Target("8", "W4: gap to s5cmd (reported, no target)",
                      f"{gap:.2f}x" if gap is not None else "not measured", None))
    w1 = s.get(("W1", "drtransfer"))
    out.append(Target("3", f"W1: peak RSS of the whole engine < {RSS_LIMIT_MIB} MiB (default settings)",
                      f"{w1.median['peak_rss_mib']:.0f} MiB" if w1 and w1.median else "not measured",
                      w1.median["peak_rss_mib"] < RSS_LIMIT_MIB if w1 and w1.median else None))
    ratio_target("3", "W1: >= 0.9x the throughput of one tuned TransferManager", "W1", "tm-ceiling", 0.9)
    w2 = s.get(("W2", "drtransfer"))
    if w1 and w2 and w1.median and w2.median:
        value = w1.median["seconds"] / w2.median["seconds"]
        out.append(Target("3", "W2 (same endpoint) >= 3x faster than W1 (cross-endpoint)", f"{value:.2f}x", value >= 3))
    else:
        out.append(Target("3", "W2 (same endpoint) >= 3x faster than W1 (cross-endpoint)", "not measured", None))
    out += targets_17(s)
    return out


def targets_17(s: dict[tuple[str, str], Summary]) -> list[Target]:
    """Issue 17's goals: ratios against peers in the same run, W1's client CPU, W3's RSS, requests."""
    out: list[Target] = []

    def ratio(text: str, workload: str, peer: str | None, needed: float) -> None:
        value = speedup(s, workload, peer) if peer else None
        measured = "not measured" if value is None else f"{value:.2f}x ({BY_NAME[peer].label if peer else ''})"
        out.append(Target("17", text, measured, None if value is None else value >= needed))

    def figure(text: str, workload: str, name: str, limit: float, unit: str) -> None:
        summary = s.get((workload, "drtransfer"))
        value = summary.median.get(name) if summary and summary.median else None
        measured = "not measured" if value is None else f"{value:.2f} {unit}"
        out.append(Target("17", text, measured, None if value is None else value <= limit))

    ratio("W1: >= 1.0x rclone (moonshot 1.15x)", "W1", "rclone", 1.0)
    figure("W1: client CPU <= 0.6 s", "W1", "cpu_seconds", 0.6, "s")
    ratio("W2: >= 1.0x s5cmd", "W2", "s5cmd", 1.0)
    ratio("W3: >= 1.0x the fastest peer", "W3", fastest_peer(s, "W3"), 1.0)
    figure(f"W3: peak RSS < {RSS_LIMIT_17_MIB} MiB", "W3", "peak_rss_mib", RSS_LIMIT_17_MIB, "MiB")
    ratio("W4: >= 0.9x s5cmd", "W4", "s5cmd", 0.9)
    for workload in sorted({w for (w, _) in s}):
        ours, peer = s.get((workload, "drtransfer")), s.get((workload, "rclone"))
        if not (ours and peer and "requests" in ours.median and "requests" in peer.median):
            out.append(Target("17", f"{workload}: requests per run <= rclone's", "not measured", None))
            continue
        mine, theirs = ours.median["requests"], peer.median["requests"]
        out.append(Target("17", f"{workload}: requests per run <= rclone's", f"{mine:.0f} vs {theirs:.0f}",
                          mine <= theirs))
    return out


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"


def workload_table(w: Workload, s: dict[tuple[str, str], Summary], payload: dict[str, int]) -> list[str]:
    lines = [
        f"### {w.name}: {w.title}",
        "",
        f"Payload: {payload.get('objects', 0)} objects, {payload.get('bytes', 0) / 2**20:.1f} MiB.",
        "",
        "| tool | runs ok | seconds | MiB/s | objects/s | client CPU s | client CPU s/GiB | peak RSS (PSS) MiB "
        "| server CPU s | requests | deepracer-transfer speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = sorted((summary for (wn, _), summary in s.items() if wn == w.name),
                  key=lambda x: x.median.get("seconds", float("inf")))
    for summary in rows:
        tool = BY_NAME[summary.tool]
        runs = f"{summary.ok}/{summary.ok + summary.failed}"
        if not summary.median:
            lines.append(f"| {tool.label} | {runs} | failed: {(summary.errors or ['?'])[0][:80]} |||||||||")
            continue
        m, lo, hi = summary.median, summary.low, summary.high
        ratio = speedup(s, w.name, summary.tool)
        per_gib = cpu_per_gib(summary, payload)
        lines.append(
            f"| {'**' + tool.label + '**' if summary.tool == 'drtransfer' else tool.label} | {runs} "
            f"| {_fmt(m['seconds'], 2)} ({_fmt(lo['seconds'], 2)}–{_fmt(hi['seconds'], 2)}) "
            f"| {_fmt(m['mib_per_s'])} | {_fmt(m['objects_per_s'])} | {_fmt(m['cpu_seconds'], 2)} "
            f"| {'–' if per_gib is None else _fmt(per_gib, 2)} "
            f"| {_fmt(m['peak_rss_mib'], 0)} ({_fmt(m['peak_pss_mib'], 0)}) | {_fmt(m['server_cpu_seconds'], 2)} "
            f"| {_fmt(m['requests'], 0) if 'requests' in m else '–'} "
            f"| {'–' if summary.tool == 'drtransfer' or ratio is None else f'{ratio:.2f}x'} |"
        )
    lines += ["", "Settings:", ""]
    for name, tool in BY_NAME.items():
        if tool.applies(w) and any(t == name for (wn, t) in s if wn == w.name):
            lines.append(f"- {tool.label}: {tool.settings(w)}")
    return [*lines, ""]


def plot(workloads: Sequence[Workload], s: dict[tuple[str, str], Summary], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(workloads), figsize=(4.2 * len(workloads), 4.2), squeeze=False)
    for ax, w in zip(axes[0], workloads, strict=True):
        key = "objects_per_s" if w.unit == "objects/s" else "mib_per_s"
        rows = [x for (wn, _), x in s.items() if wn == w.name and x.median]
        rows.sort(key=lambda x: x.median[key])
        labels = [BY_NAME[x.tool].label.replace(" (reference)", "\n(reference)") for x in rows]
        values = [x.median[key] for x in rows]
        errors = [[x.median[key] - x.low[key] for x in rows], [x.high[key] - x.median[key] for x in rows]]
        colors = ["tab:green" if x.tool == "drtransfer" else "tab:gray" if not BY_NAME[x.tool].peer else "tab:blue"
                  for x in rows]
        ax.barh(range(len(rows)), values, xerr=errors, color=colors, capsize=3)
        ax.set_yticks(range(len(rows)), labels, fontsize=8)
        ax.set_title(f"{w.name} ({w.unit}, median, min–max)", fontsize=10)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(results: Path, out_dir: Path, notes: Path | None = None) -> Path:
    meta, runs, profiles = load(results)
    s = summarize(runs)
    workloads = workloads_of(meta)
    quick = bool(meta.get("quick"))
    plot(workloads, s, out_dir / "results.png",
         "deepracer-transfer vs peers" + (" — QUICK HARNESS CHECK, not results" if quick else ""))
    machine, versions = meta.get("machine", {}), meta.get("versions", {})
    lines = [
        "# Benchmark results" + (" — QUICK HARNESS CHECK (tiny workloads; not results)" if quick else ""),
        "",
        f"Run of {meta.get('date', '?')} on {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('memory', '?')} RAM ({machine.get('os', '?')}); load average at start "
        f"{', '.join(f'{x:.2f}' for x in machine.get('load_at_start', []))}.",
        "",
        "Regenerate everything (servers, data, every tool, this file and `results.png`) with "
        "`.venv/bin/python benchmarks/run.py`; re-render from the raw data (`results.jsonl`) with "
        "`.venv/bin/python benchmarks/run.py --report`. Method: `benchmarks/README.md`.",
        "",
        "Versions: " + "; ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        "",
        f"Each figure is the median of {meta.get('repeat', '?')} runs (min–max in brackets); tools alternate "
        "within each repetition. Speed-up = the peer's median seconds / deepracer-transfer's median seconds "
        "for the same payload. Client CPU and peak RSS cover each tool's whole process tree (RSS summed over "
        "its processes, so shared pages count once per process; PSS in brackets splits them); server CPU is "
        "both SeaweedFS servers over the same interval.",
        "",
        "## Targets",
        "",
        "| issue | target | measured | met |",
        "|---|---|---|---|",
    ]
    for t in targets(s):
        met = "–" if t.met is None else ("yes" if t.met else "**no**")
        lines.append(f"| {t.issue} | {t.text} | {t.measured} | {met} |")
    lines += ["", "![throughput per tool and workload](results.png)", "", "## Workloads", ""]
    payloads = meta.get("payloads", {})
    for w in workloads:
        lines += workload_table(w, s, payloads.get(w.name, {}))
    if profiles:
        lines += ["## Where deepracer-transfer's client time goes (py-spy)", ""]
        for p in profiles:
            lines += [f"### {p['workload']}", ""]
            if p.get("error"):
                lines += [f"Profile failed: {p['error']}", ""]
                continue
            lines += [f"{p['samples']} samples over every process; full listing: `{p['file']}`.", "",
                      "| where (by innermost frame) | share |", "|---|---|"]
            lines += [f"| {group} | {share:.1f}% |" for group, share in p["groups"]]
            lines += ["", "| hottest innermost frames | share |", "|---|---|"]
            lines += [f"| `{frame}` | {share:.1f}% |" for frame, share in p["top"][:10]]
            lines.append("")
    if notes and notes.exists():
        lines += ["## Notes", "", notes.read_text().strip(), ""]
    out = out_dir / "RESULTS.md"
    out.write_text("\n".join(lines) + "\n")
    return out
