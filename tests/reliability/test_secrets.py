"""Access keys, secret keys, session tokens, the DRoA password and webhook URLs never appear in
output, ``--json``, ``-v`` logs, error messages, files the commands write or notification payloads; cached
DRoA credentials are mode 0600 and ``drtransfer logout`` removes them.

Every command here runs with recognisable fake secrets, and everything it produced is scanned for them.
"""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from drtransfer.locals3 import SeaweedServer
from tests.conftest import PASSWORD, Cognito, droa_values
from tests.infra.drfc import json_lines
from tests.infra.droa_server import FakeDroa
from tests.notify.receiver import Receiver
from tests.reliability.conftest import SECRET, check_target_model, make_setup

HOOK_TOKEN = "hookT0KEN-8c1f4e2a9b7d"
DEAD_TOKEN = "deadT0KEN-5e6f7a8b9c0d"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE-session-token-77aa"
WRONG_SECRET = "drt-WRONG-secret-0a1b2c3d4e5f"


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    ok, failing = Receiver(), Receiver(mode="fail")
    yield ok, failing
    ok.stop()
    failing.stop()


def leaks(secrets: Iterable[str], texts: dict[str, str]) -> list[str]:
    """Every (secret, where) pair found; also the secret's halves, in case one is cut or wrapped."""
    found = []
    for secret in secrets:
        pieces = {secret, secret[: len(secret) // 2], secret[len(secret) // 2 :]}
        for where, text in texts.items():
            found += [f"{secret[:6]}… in {where}" for piece in pieces if len(piece) >= 6 and piece in text]
    return found


def written_files(*roots: Path, skip: Iterable[Path] = ()) -> dict[str, str]:
    """Text of every file under ``roots`` (lock files, caches ...), except the ones given."""
    skipped = set(skip)
    return {
        str(path): path.read_bytes().decode("utf-8", "replace")
        for root in roots
        if root.exists()
        for path in root.rglob("*")
        if path.is_file() and path not in skipped
    }


def output_of(done: subprocess.CompletedProcess[str], name: str) -> dict[str, str]:
    return {f"{name} stdout": done.stdout, f"{name} stderr": done.stderr}


def test_upload_never_shows_keys_tokens_or_webhook_urls(
    tmp_path: Path, local_s3: SeaweedServer, local_bucket: str, guarded_s3: SeaweedServer, guarded_bucket: str,
    receivers: tuple[Receiver, Receiver],
) -> None:  # fmt: skip
    ok, failing = receivers
    setup = make_setup(
        tmp_path, local_s3, guarded_s3, local_bucket, guarded_bucket, upload_keys=(SECRET.access_key, SECRET.secret_key)
    )
    home = tmp_path / "home"
    hooks = [ok.url(f"/hooks/T0/{HOOK_TOKEN}"), f"{failing.url(f'/hooks/T1/{DEAD_TOKEN}')}#events=batch_finished"]
    flags = [arg for url in hooks for arg in ("--notify", url)]
    env = {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    outputs: dict[str, str] = {}

    done = setup.command("upload", *setup.upload_args(), "-f", "-v", "--processes", "1", *flags, **env)
    assert done.returncode == 0, done.stderr
    assert "notification failed: JSON webhook http://127.0.0.1:" in done.stderr  # the failing one is reported
    outputs |= output_of(done, "upload -v")
    as_json = setup.command("upload", *setup.upload_args(), "-f", "--json", "-w", *flags, **env)
    assert as_json.returncode == 0 and len(json_lines(as_json.stdout)) == 3, as_json.stderr
    outputs |= output_of(as_json, "upload --json")
    assert check_target_model(setup, "0", 2)[0] == "complete"

    # Failures: a wrong secret, a session token the server refuses, a missing source object.
    credentials = setup.files.credentials
    good = credentials.read_text()
    credentials.write_text(good.replace(SECRET.secret_key, WRONG_SECRET))
    outputs |= output_of(setup.command("upload", *setup.upload_args(), "-f", "-v", **env), "wrong secret")
    credentials.write_text(good.replace(SECRET.secret_key, f"{SECRET.secret_key}\naws_session_token = {SESSION_TOKEN}"))
    outputs |= output_of(setup.command("upload", *setup.upload_args(), "-f", "-v", **env), "session token")
    credentials.write_text(good)
    local_s3.client().delete_object(Bucket=local_bucket, Key="beta/model/model_2.pb")
    missing = setup.command("upload", *setup.upload_args(), "-f", "-v", "--json", *flags, **env)
    assert missing.returncode == 1
    outputs |= output_of(missing, "missing object")

    for name in ("wrong secret", "session token"):
        assert "refused the credentials (profile drt-upload)" in outputs[f"{name} stderr"], outputs[f"{name} stderr"]
    outputs |= {f"webhook payload {n}": r.body.decode() for n, r in enumerate(ok.received() + failing.received())}
    outputs |= written_files(setup.state, home)
    assert ok.received(), "the webhook received nothing"
    secrets = [
        SECRET.access_key, SECRET.secret_key, WRONG_SECRET, SESSION_TOKEN, local_s3.secret_key, HOOK_TOKEN, DEAD_TOKEN,
    ]  # fmt: skip
    assert leaks(secrets, outputs) == []
    assert leaks([SECRET.secret_key], {"the credentials file": good})  # the scan does find what is there


def test_droa_import_never_shows_the_password_or_issued_credentials(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    droa: FakeDroa, cognito: Cognito, receivers: tuple[Receiver, Receiver],
) -> None:  # fmt: skip
    ok, _failing = receivers
    setup = make_setup(tmp_path, local_s3, upload_s3, local_bucket, upload_bucket, runs=(("0", "alpha"), ("1", "beta")))
    setup.add_to_system_env(droa_values(droa))
    cache = tmp_path / "cache"
    env = {"DRTRANSFER_CACHE_DIR": str(cache), "HOME": str(tmp_path / "home")}
    hook = ok.url(f"/hooks/T0/{HOOK_TOKEN}") + "#events=all"

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return setup.run(*args, env=setup.env(**env), stdin=stdin)

    outputs: dict[str, str] = {}
    done = run(
        "import", *setup.upload_args(), "--to", "droa", "--password-stdin", "--json", "-v", "--notify", hook,
        "--processes", "1", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    outputs |= output_of(done, "import")
    assert len(droa.models) == 2

    [cached] = list((cache / "droa").glob("*.json"))
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    assert stat.S_IMODE(cached.parent.stat().st_mode) == 0o700
    cached_text = cached.read_text()
    assert cognito.issued.secret_key in cached_text  # what the cache is for; never the password
    assert PASSWORD not in cached_text
    outputs |= written_files(setup.state, tmp_path / "home", cache, skip=[cached])

    wrong = run("import", *setup.upload_args("0"), "--to", "droa", "--password-stdin", stdin="Wrong-Horse-77\n")
    assert wrong.returncode == 0, wrong.stderr  # the cached credentials are still valid: no sign-in needed
    outputs |= output_of(wrong, "import from cache")
    logout = run("logout")
    assert logout.returncode == 0 and logout.stdout.strip() == "Removed 1 cached sign-in(s)."
    assert not cached.exists()
    refused = run("import", *setup.upload_args("0"), "--to", "droa", "--password-stdin", stdin="Wrong-Horse-77\n")
    assert refused.returncode == 2 and "Could not sign in to DRoA" in refused.stderr
    outputs |= output_of(refused, "wrong password") | output_of(logout, "logout")

    outputs |= {f"webhook payload {n}": r.body.decode() for n, r in enumerate(ok.received())}
    assert ok.received(), "the webhook received nothing"
    issued = cognito.issued
    secrets = [PASSWORD, "Wrong-Horse-77", issued.access_key, issued.secret_key, issued.session_token or "", HOOK_TOKEN]
    assert leaks([s for s in secrets if s], outputs) == []
    assert leaks([issued.secret_key], {"the cache": cached_text})  # the scan does find what is there
