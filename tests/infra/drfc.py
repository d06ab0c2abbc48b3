"""DRfC setups and the installed console scripts, as the end-to-end tests use them.

- :func:`clean_env`: the environment every command runs with: this process's environment without
  ``DR_*``, ``AWS_*`` and ``DRTRANSFER_*`` (so the developer's own DRfC, AWS or drtransfer settings never
  reach a test), plus the environment of the DRfC files (``DrfcFiles.environ``) and any extra values.
- :func:`run_cli` and :func:`start_cli`: run an installed console script of this virtual environment
  (``drtransfer``, ``dr-upload-model``, ``dr-upload-car-zip``) as a user runs it, in the foreground
  (with a timeout and optional stdin) or in the background.
- :func:`drfc_config_for`: DRfC configuration files for runs that go from one server to another.
- :class:`DrfcSetup` and :func:`seed_drfc`: seeded runs on two servers together with the DRfC files that
  point at them; the tests' setups (upload, plugins, bench, importers, car-zip, reliability) are made so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from drtransfer.locals3 import SeaweedServer
from drtransfer.samples import DrfcFiles, SeededModel, seed_model, write_drfc_config
from tests.infra.interrupts import with_default_sigint

# Variables of the developer's environment that never reach a command under test.
CLEARED_PREFIXES = ("DR_", "AWS_", "DRTRANSFER_")
TIMEOUT = 240.0  # seconds a command may take before the test fails


def clean_env(files: DrfcFiles | None = None, /, **extra: str) -> dict[str, str]:
    """``os.environ`` without ``DR_*``, ``AWS_*`` and ``DRTRANSFER_*``, then ``files.environ`` (where
    boto finds the DRfC files' credentials), then ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(CLEARED_PREFIXES)}
    if files is not None:
        env.update(files.environ)
    env.update(extra)
    return env


def console_script(command: str = "drtransfer") -> str:
    """The path of an installed console script of the running virtual environment."""
    return str(Path(sys.executable).parent / command)


def run_cli(
    *args: str,
    command: str = "drtransfer",
    env: Mapping[str, str] | None = None,
    stdin: str | None = "",
    timeout: float = TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run ``command args...`` and wait for it, capturing its output as text.

    ``env`` defaults to :func:`clean_env` (no DRfC files); ``stdin`` is the text on its standard input
    (``""``: an immediate end of input), or ``None`` for ``/dev/null``.
    """
    return subprocess.run(
        [console_script(command), *args],
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else clean_env(),
        timeout=timeout,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
    )


def start_cli(
    *args: str, command: str = "drtransfer", env: Mapping[str, str] | None = None, new_session: bool = False
) -> subprocess.Popen[str]:
    """Start ``command args...`` in the background with text pipes for its output and ``/dev/null`` as its
    input, with SIGINT at its default disposition (a test may interrupt it, whatever started the suite);
    ``new_session`` gives it a process group of its own (to signal it as a terminal would)."""
    return subprocess.Popen(
        with_default_sigint([console_script(command), *args]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=dict(env) if env is not None else clean_env(),
        start_new_session=new_session,
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects of a command's ``--json`` output (one a line), other lines left out."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def drfc_config_for(
    directory: Path,
    local: SeaweedServer,
    local_bucket: str,
    upload: SeaweedServer,
    upload_bucket: str,
    runs: Sequence[tuple[str, str, str]],
    *,
    local_url: str | None = None,
    upload_url: str | None = None,
    upload_keys: tuple[str, str] | None = None,
) -> DrfcFiles:
    """DRfC configuration files (``run_id, model prefix, upload prefix`` per run) for runs that go from
    ``local`` to ``upload``, with the servers' own credentials; ``local_url``, ``upload_url`` (a proxy in
    front of a server) and ``upload_keys`` replace what the servers give."""
    return write_drfc_config(
        directory,
        local_url=local_url or local.url,
        local_keys=(local.access_key, local.secret_key),
        local_bucket=local_bucket,
        upload_url=upload_url or upload.url,
        upload_keys=upload_keys or (upload.access_key, upload.secret_key),
        upload_bucket=upload_bucket,
        runs=runs,
    )


@dataclass
class DrfcSetup:
    """Seeded DRfC runs on two servers and the DRfC configuration files that point at them."""

    local: SeaweedServer
    upload: SeaweedServer
    local_bucket: str
    upload_bucket: str
    files: DrfcFiles
    models: dict[str, SeededModel]  # run id -> seeded model
    runs: tuple[tuple[str, str], ...] = ()  # (run id, model prefix) of each run file
    upload_prefixes: dict[str, str] = field(default_factory=dict)  # run id -> DR_UPLOAD_S3_PREFIX
    environ: dict[str, str] = field(default_factory=dict)  # added to the environment of every command

    def env(self, **extra: str) -> dict[str, str]:
        """The clean environment of a command, with the DRfC files, :attr:`environ` and ``extra``."""
        return clean_env(self.files, **{**self.environ, **extra})

    def run(
        self,
        *args: str,
        command: str = "drtransfer",
        env: dict[str, str] | None = None,
        stdin: str | None = "",
        timeout: float = TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run an installed console script (see :func:`run_cli`) with :meth:`env` unless ``env`` is given."""
        return run_cli(*args, command=command, env=env or self.env(), stdin=stdin, timeout=timeout)

    def popen(
        self, *args: str, command: str = "drtransfer", env: dict[str, str] | None = None, new_session: bool = False
    ) -> subprocess.Popen[str]:
        """Start an installed console script in the background (see :func:`start_cli`)."""
        return start_cli(*args, command=command, env=env or self.env(), new_session=new_session)

    def add_to_system_env(self, values: Mapping[str, str]) -> None:
        """Append ``KEY=value`` lines to system.env."""
        with self.files.system_env.open("a") as system_env:
            system_env.write("".join(f"{key}={value}\n" for key, value in values.items()))

    def upload_args(self, *run_ids: str) -> list[str]:
        """The run files of ``run_ids`` (default: every run) and ``--system-env``, as a command takes them."""
        ids = run_ids or tuple(run_id for run_id, _ in self.runs)
        return [*(str(self.files.run_files[int(r)]) for r in ids), "--system-env", str(self.files.system_env)]


SetupT = TypeVar("SetupT", bound=DrfcSetup)


def seed_drfc(
    directory: Path,
    local: SeaweedServer,
    upload: SeaweedServer,
    local_bucket: str,
    upload_bucket: str,
    runs: Sequence[tuple[str, str] | tuple[str, str, str]],
    *,
    checkpoints: Sequence[int] = (1, 2, 3),
    best: int | None = None,
    scale: float | Mapping[str, float] = 0.02,
    local_url: str | None = None,
    upload_url: str | None = None,
    upload_keys: tuple[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    kind: type[SetupT] = DrfcSetup,  # type: ignore[assignment]
) -> SetupT:
    """Seed a model per run (``run_id, model prefix[, upload prefix]``; the upload prefix defaults to
    ``<prefix>-up``) in ``local_bucket`` with ``checkpoints`` and ``best`` (``None``: the middle one) at
    ``scale`` (for all runs, or per run id), write the DRfC files to ``directory`` and return them as a
    ``kind`` (a :class:`DrfcSetup` or a subclass of it). ``local_url``, ``upload_url`` and ``upload_keys``
    go into the files instead of the servers' own; ``environ`` goes into every command's environment."""
    triples = tuple((run[0], run[1], run[2] if len(run) > 2 else f"{run[1]}-up") for run in runs)
    scales = scale if isinstance(scale, Mapping) else {run_id: scale for run_id, _, _ in triples}
    client = local.client()
    models = {
        run_id: seed_model(client, local_bucket, prefix, checkpoints=checkpoints, best=best, scale=scales[run_id])
        for run_id, prefix, _ in triples
    }
    files = drfc_config_for(
        directory, local, local_bucket, upload, upload_bucket, triples,
        local_url=local_url, upload_url=upload_url, upload_keys=upload_keys,
    )  # fmt: skip
    return kind(
        local, upload, local_bucket, upload_bucket, files, models,
        runs=tuple((run_id, prefix) for run_id, prefix, _ in triples),
        upload_prefixes={run_id: target for run_id, _, target in triples},
        environ=dict(environ or {}),
    )  # fmt: skip
