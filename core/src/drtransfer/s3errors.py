"""Turn botocore exceptions into one sentence a DRfC user can act on (never with a secret in it)."""

from __future__ import annotations

import re
from typing import Any

import botocore.exceptions
import urllib3.exceptions

from drtransfer.endpoints import Endpoint
from drtransfer.errors import ConfigError, DrTransferError, TransferError

_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "InvalidClientTokenId",
}
_DENIED_CODES = {"AccessDenied", "403", "Forbidden"}
# A connection reset or closed mid-request or mid-body (a server killed, a proxy dropping it).
_BROKEN_CONNECTION: tuple[type[BaseException], ...] = (
    botocore.exceptions.HTTPClientError,
    botocore.exceptions.IncompleteReadError,
    ConnectionError,
    urllib3.exceptions.HTTPError,
)


_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}
# OpenSSL's reasons for a reply that is not a TLS record: a plain-http server answering a TLS hello.
_NOT_TLS_REASONS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE")
_SSL_REASON = re.compile(r"\[SSL: (\w+)\]")


def answer_timeout(client: Any) -> float | None:
    """The read timeout of a botocore client (seconds it waits for an answer), None if unknown."""
    timeout = getattr(getattr(getattr(client, "meta", None), "config", None), "read_timeout", None)
    return float(timeout) if isinstance(timeout, int | float) else None


def error_code(error: BaseException) -> str:
    if isinstance(error, botocore.exceptions.ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def is_not_found(error: BaseException, *also: str) -> bool:
    """Whether ``error`` says the object (or, with ``also`` codes such as ``NoSuchUpload``, that thing)
    does not exist. HEAD answers a bare 404 without a body, GET answers ``NoSuchKey``."""
    code = error_code(error)
    return code in _NOT_FOUND_CODES or code in also


def describe_client_error(
    error: BaseException, *, endpoint: Endpoint, bucket: str, action: str, answer_within: float | None = None
) -> DrTransferError:
    """Map ``error`` from ``action`` on ``bucket`` to a ConfigError (fix your setup) or TransferError.

    ``answer_within`` is given by checks made before anything is written (the client's read timeout):
    there a server that accepts the connection and stays silent is a ConfigError, not a transfer to retry.
    """
    if isinstance(error, DrTransferError):
        return error
    where = endpoint.describe()
    who = f" (profile {endpoint.profile})" if endpoint.profile else ""
    if isinstance(error, botocore.exceptions.SSLError) and _not_tls(error, endpoint):
        url = endpoint.url or ""
        plain, setting = "http://" + url[len("https://") :], endpoint.url_variable or "the endpoint URL"
        return ConfigError(f"The server at {url} speaks http, not https: use {plain} in {setting}.")
    if untrusted_certificate(error):
        found = _VERIFY_REASON.search(str(error))
        reason = f" ({found.group(1)})" if found else ""
        return ConfigError(
            f"The {where} presented a TLS certificate this machine does not trust{reason}; if a private CA "
            f"signed it, set AWS_CA_BUNDLE (or ca_bundle in the AWS config) to that CA's bundle."
        )
    if isinstance(error, botocore.exceptions.ReadTimeoutError) and answer_within is not None:
        check = (
            f"{endpoint.url_variable} names the S3 server's address and port"
            if endpoint.url_variable
            else "the network to it works"
        )
        return ConfigError(
            f"The {where} accepted the connection but did not answer within {answer_within:g} s; check that "
            f"{check} and that the server is not stalled."
        )
    if isinstance(error, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectTimeoutError):
        return ConfigError(f"Cannot reach the {where}; check that the server runs and the URL is right.")
    if isinstance(error, botocore.exceptions.ReadTimeoutError):
        return TransferError(
            f"The {where} did not answer in time while trying to {action}; it may be overloaded or stalled, "
            f"run the command again."
        )
    if isinstance(error, _BROKEN_CONNECTION):
        return TransferError(
            f"The connection to the {where} broke while trying to {action}; check that the server runs and run "
            f"the command again."
        )
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return ConfigError(f"No credentials for the {where}; set the profile{who} or its keys.")
    code = error_code(error)
    if code in _CREDENTIAL_CODES:
        return ConfigError(f"The {where} refused the credentials{who} ({code}); check the access key and secret.")
    if code == "NoSuchBucket":
        return ConfigError(f"The bucket {bucket!r} does not exist on the {where}; create it or fix the bucket name.")
    if code in _DENIED_CODES:
        return ConfigError(
            f"Access denied: the credentials{who} may not {action} in bucket {bucket!r} on the {where}; "
            f"grant that permission."
        )
    if isinstance(error, botocore.exceptions.ClientError):
        message = error.response.get("Error", {}).get("Message", "")
        return TransferError(f"{action} in bucket {bucket!r} on the {where} failed: {code} {message}".strip() + ".")
    return TransferError(f"{action} in bucket {bucket!r} on the {where} failed: {type(error).__name__}: {error}.")


_VERIFY_REASON = re.compile(r"certificate verify failed: ([^(]+?)\s*\(_ssl")


def untrusted_certificate(error: BaseException) -> bool:
    """Whether ``error`` is a server certificate that fails verification: a setup to fix, not an outage."""
    return isinstance(error, botocore.exceptions.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(error)


def _not_tls(error: BaseException, endpoint: Endpoint) -> bool:
    """Whether an https endpoint's server answered the TLS hello with something that is not TLS."""
    found = _SSL_REASON.search(str(error))
    return found is not None and found.group(1) in _NOT_TLS_REASONS and (endpoint.url or "").startswith("https://")
