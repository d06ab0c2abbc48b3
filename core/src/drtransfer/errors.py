"""The errors deepracer-transfer reports to a user: one clear sentence each.

Every message names what is wrong and, where there is one, how to fix it. Messages never contain a
secret: build them from bucket names, keys, file names and URLs without credentials.
"""

from __future__ import annotations


class DrTransferError(Exception):
    """Base class: ``str(error)`` is the sentence shown to the user."""

    exit_code = 1


class ConfigError(DrTransferError):
    """Bad configuration or usage, found before anything is written (exit code 2)."""

    exit_code = 2


class ModelError(DrTransferError):
    """One model cannot be transferred (missing files, bad checkpoint choice); the others go on (exit 1)."""

    exit_code = 1


class PluginError(ConfigError):
    """A plugin failed to load or misbehaved while being registered."""


class TransferError(DrTransferError):
    """An S3 operation failed for good after its retries."""

    exit_code = 1


class Interrupted(DrTransferError):
    """Ctrl-C or SIGTERM: everything started was cleaned up (exit 130)."""

    exit_code = 130

    def __init__(self, message: str = "Interrupted; every multipart upload that was started has been aborted.") -> None:
        super().__init__(message)
