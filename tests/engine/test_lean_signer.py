"""The lean data path signs with awscrt's C signer (issue 17: a maintained signer, ~10x less CPU than
botocore's); it must give botocore's own SigV4 for every request shape the lean path sends."""

from __future__ import annotations

import datetime

import botocore.auth
import pytest

from drtransfer.endpoints import Credentials
from drtransfer.engine.lean_signer import BotocoreSigner, CrtSigner, make_signer

WHEN = datetime.datetime(2026, 12, 1, 23, 59, 58)
REQUESTS = [
    ("GET", "/bucket/w1/model-00/model/1_Step-3620.ckpt.index", {}),
    ("GET", "/bucket/a%20b%2Bc%3Dd/%C3%A9~x.json", {"Range": "bytes=0-99"}),
    ("PUT", "/bucket/t/a%20b%2Bc%3Dd/%C3%A9~x.json",
     {"Content-Length": "70000", "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==", "Content-Type": "application/json",
      "x-amz-meta-drtransfer-source-etag": "d41d8cd98f00b204e9800998ecf8427e"}),
    ("PUT", "/bucket/big.bin?partNumber=3&uploadId=2~abc%2Fdef", {"Content-Length": "8388608"}),
]  # fmt: skip


@pytest.mark.parametrize("token", [None, "session-token/with+chars="])
@pytest.mark.parametrize(("method", "path", "headers"), REQUESTS)
def test_awscrt_signs_as_botocore_does(
    method: str, path: str, headers: dict[str, str], token: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = Credentials("AKIDLEANSIGNER", "lean/signer+secret", token)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: WHEN)
    crt = CrtSigner(keys, "eu-west-1")
    crt._config = crt._config.replace(date=WHEN.replace(tzinfo=datetime.UTC))
    sent = {"Host": "127.0.0.1:8333", **headers}

    ours = crt.sign(method, "http://127.0.0.1:8333" + path, path, sent)
    theirs = BotocoreSigner(keys, "eu-west-1").sign(method, "http://127.0.0.1:8333" + path, path, sent)

    def lowered(signed: dict[str, str]) -> dict[str, str]:
        return {name.lower(): value for name, value in signed.items()}

    assert lowered(ours) == lowered(theirs)
    scope = "AKIDLEANSIGNER/20261201/eu-west-1/s3/aws4_request"
    assert lowered(ours)["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={scope}")
    assert lowered(ours)["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"


def test_botocore_signs_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = Credentials("a", "b")
    assert isinstance(make_signer(keys, "us-east-1"), CrtSigner)
    monkeypatch.setenv("DRTRANSFER_LEAN_SIGNER", "botocore")
    assert isinstance(make_signer(keys, "us-east-1"), BotocoreSigner)
