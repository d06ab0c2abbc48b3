"""docs/api.md's notebook example runs as written against two real SeaweedFS servers: core stands alone,
without the command line."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from drtransfer.locals3 import SeaweedServer
from drtransfer.samples import seed_model
from tests.conftest import list_tree
from tests.infra.drfc import clean_env, drfc_config_for

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def example() -> str:
    [code] = re.findall(r"## Upload two runs from a notebook.*?```python\n(.*?)```", DOC.read_text(), re.S)
    return code


def test_the_notebook_example_uploads_two_runs(
    tmp_path: Path,
    local_s3: SeaweedServer,
    upload_s3: SeaweedServer,
    local_bucket: str,
    upload_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for prefix in ("alpha", "beta"):
        seed_model(local_s3.client(), local_bucket, prefix, checkpoints=(1, 2, 3), best=2, scale=0.02)
    runs = [("0", "alpha", "alpha-up"), ("1", "beta", "beta-up")]
    files = drfc_config_for(tmp_path, local_s3, local_bucket, upload_s3, upload_bucket, runs)
    env = clean_env(files, DRTRANSFER_STATE_DIR=str(tmp_path / "state"))  # this process's environment, as a command's
    for name in set(os.environ) - set(env):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)

    exec(compile(example(), str(DOC), "exec"), {})  # the example asserts report.ok itself

    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[-2] for line in printed] == ["ok", "ok"]
    for prefix in ("alpha-up", "beta-up"):
        tree = list_tree(upload_s3, upload_bucket, f"{prefix}/")
        checkpoints = {k.split("/")[2].split("_")[0] for k in tree if "_Step-" in k}
        assert checkpoints == {"2"}  # best = checkpoint 2, and only it
        assert tree[f"{prefix}/model/.coach_checkpoint"].startswith(b"2_Step-")  # best = checkpoint 2
