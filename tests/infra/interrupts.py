"""Start a child process that a test interrupts with SIGINT, with SIGINT at its default disposition.

A process started with SIGINT ignored (``nohup ... &``, a background job of a non-interactive shell, some CI
runners) passes that disposition on to the processes it starts, and Python then installs no Ctrl-C handler:
a SIGINT the test sends would be ignored. The prefix restores the default disposition and then replaces itself
with the command (``exec`` keeps a default disposition), so the command keeps its process id and session.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

_RESTORE_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
)


def with_default_sigint(command: Sequence[str]) -> list[str]:
    """``command`` (its first item a path to an executable), started with SIGINT at its default disposition."""
    return [sys.executable, "-c", _RESTORE_SIGINT, *command]


__all__ = ["with_default_sigint"]
