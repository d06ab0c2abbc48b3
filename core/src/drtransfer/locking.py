"""One writer per target: an advisory lock per target prefix, so two commands never upload the same
model to the same place at once.

The lock is an ``flock`` on a file in ``$DRTRANSFER_STATE_DIR/locks`` (default
``$XDG_CACHE_HOME/drtransfer/locks``), named after a hash of the endpoint URL, bucket and prefix. The
kernel releases it when the process ends, however it ends, so a crash never leaves a stale lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from drtransfer.errors import ConfigError


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get("DRTRANSFER_STATE_DIR"):
        return Path(environ["DRTRANSFER_STATE_DIR"])
    cache = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "drtransfer"


@contextlib.contextmanager
def target_locks(targets: Sequence[tuple[str, str]], environ: Mapping[str, str] | None = None) -> Iterator[None]:
    """Hold a lock for each ``(endpoint URL, s3://bucket/prefix)``; refuse at once when one is held."""
    directory = state_dir(environ) / "locks"
    with contextlib.ExitStack() as stack:
        for endpoint_url, target_url in sorted(set(targets)):
            digest = hashlib.sha256(f"{endpoint_url}\n{target_url}".encode()).hexdigest()[:24]
            path = directory / f"{digest}.lock"
            try:
                directory.mkdir(parents=True, exist_ok=True)
                handle = stack.enter_context(path.open("a+"))
            except OSError as error:
                raise ConfigError(
                    f"Cannot create the lock file {path}: {error.strerror or error}; fix {directory} or point "
                    f"DRTRANSFER_STATE_DIR at a writable directory."
                ) from None
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise ConfigError(
                    f"Another drtransfer command ({holder}) is writing to {target_url}; wait for it to finish "
                    f"and run this one again."
                ) from None
            # Who holds it, for the message above; only a courtesy, so a full disk does not stop us (and
            # the write is unbuffered, so closing the file cannot fail on it later).
            with contextlib.suppress(OSError):
                handle.seek(0)
                handle.truncate()
                os.write(handle.fileno(), f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}".encode())
        yield
