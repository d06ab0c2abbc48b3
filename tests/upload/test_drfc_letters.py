"""DRfC's letters, the same in every command, and DRfC's answers to DRfC's cases: a "no" at the question
(``Aborting.``, exit 1 for DRfC's commands), Ctrl-C at the question (nothing was started, so nothing is
said to be aborted), ``-p`` and ``-c N`` where DRfC has them, ``-I`` on import, examples in ``-h``."""

from __future__ import annotations

import io
import os
import select
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.conftest import list_tree
from tests.infra.drfc import DrfcSetup
from tests.infra.interrupts import with_default_sigint

BIN = Path(sys.executable).parent


def on_a_terminal(drfc: DrfcSetup, command: str, *args: str, answer: str | None) -> tuple[subprocess.Popen[str], int]:
    """Start ``command`` with a pseudo-terminal as stdin; type ``answer`` (None: type nothing)."""
    master, slave = os.openpty()
    process = subprocess.Popen(
        with_default_sigint([str(BIN / command), *args]),
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=drfc.env(),
    )
    os.close(slave)
    if answer is not None:
        os.write(master, answer.encode())
    return process, master


def finish(process: subprocess.Popen[str], master: int) -> tuple[int, str]:
    try:
        _, err = process.communicate(timeout=240)
    finally:
        os.close(master)
    return process.returncode, err


@pytest.mark.parametrize(
    ("command", "code", "said"),
    [("dr-upload-model", 1, "Aborting."), ("drtransfer", 2, "Aborted: nothing was uploaded.")],
)
def test_no_at_the_question_aborts_as_the_command_says_it(drfc: DrfcSetup, command: str, code: int, said: str) -> None:
    args = [*drfc.upload_args("0")] if command == "dr-upload-model" else ["upload", *drfc.upload_args("0")]
    returned, err = finish(*on_a_terminal(drfc, command, *args, answer="n\n"))
    assert returned == code, err
    assert err.strip().splitlines()[-1] == said  # as the command says it, no "error:" in front
    assert list_tree(drfc.upload, drfc.upload_bucket) == {}


def test_ctrl_c_at_the_question_does_not_claim_aborted_uploads(drfc: DrfcSetup) -> None:
    process, master = on_a_terminal(drfc, "drtransfer", "upload", *drfc.upload_args("0"), answer=None)
    assert process.stdout is not None
    seen = b""
    deadline = time.monotonic() + 120
    while b"Are you sure?" not in seen and time.monotonic() < deadline and process.poll() is None:
        ready, _, _ = select.select([process.stdout.fileno()], [], [], 1.0)
        if ready:
            seen += os.read(process.stdout.fileno(), 4096)
    assert b"Are you sure?" in seen, seen
    process.send_signal(signal.SIGINT)
    returned, err = finish(process, master)
    assert returned == 130, err
    assert "Interrupted at the question: nothing was written." in err
    assert "multipart" not in err
    assert list_tree(drfc.upload, drfc.upload_bucket) == {}


def help_of(drfc: DrfcSetup, *command: str) -> str:
    result = drfc.run(*command[1:], "--help", command=command[0])
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_same_letters_have_the_same_long_names_everywhere(drfc: DrfcSetup) -> None:
    commands = [
        ("drtransfer", "upload"),
        ("dr-upload-model",),
        ("drtransfer", "car-zip"),
        ("dr-upload-car-zip",),
    ]
    for command in commands:
        text = help_of(drfc, *command)
        for spelled in ("-f, --force", "-p, --prefix PREFIX", "-L, --local-bucket, --local-target", "-b, --best"):
            assert spelled in text, (command, spelled)
        assert "-c, --checkpoint-number N" in text, command
    assert "-I, --import-name, --name NAME" in help_of(drfc, "drtransfer", "import")
    assert "-I, --import-name, --name NAME" in help_of(drfc, "drtransfer", "upload")
    for command in commands:
        assert "Examples:" in help_of(drfc, *command), command


def test_car_zip_takes_p_and_dr_upload_car_zip_takes_c(drfc: DrfcSetup) -> None:
    # -p beta: the model of the prefix beta, named and uploaded under beta (as dr-upload-car-zip -p).
    result = drfc.run("car-zip", *drfc.upload_args("0"), "-p", "beta", "-f", "-c", "2")
    assert result.returncode == 0, result.stderr
    result = drfc.run(*drfc.upload_args("1"), "-c", "10", "-f", command="dr-upload-car-zip")
    assert result.returncode == 0, result.stderr
    tree = list_tree(drfc.upload, drfc.upload_bucket)
    beta_pb = drfc.models["1"]  # run 1 trains in beta
    for key, number in (("beta/beta.tar.gz", 2), ("beta-up/beta-up.tar.gz", 10)):
        with tarfile.open(fileobj=io.BytesIO(tree[key])) as archive:
            member = archive.extractfile("agent/model.pb")
            assert member is not None
            source = drfc.local.client().get_object(Bucket=drfc.local_bucket, Key=f"beta/model/model_{number}.pb")
            assert member.read() == source["Body"].read(), key
    assert beta_pb is not None
