"""A third-party plugin whose drtransfer_notify raises, installed (a dist-info with an entry point on
PYTHONPATH): `drtransfer upload` still uploads everything, and the failure is reported once."""

from __future__ import annotations

from pathlib import Path

from drtransfer.samples import checkpoint_name
from tests.conftest import list_tree
from tests.plugins.conftest import TARGET, DrfcRun

PLUGIN = """
from drtransfer import hookimpl

CALLS = []


@hookimpl
def drtransfer_notify(event):
    CALLS.append(event.name)
    raise RuntimeError(f"the pager service is down ({event.name}, call {len(CALLS)})")
"""


def install_raising_plugin(directory: Path) -> Path:
    directory.mkdir()
    (directory / "drtransfer_raising.py").write_text(PLUGIN)
    info = directory / "drtransfer_raising-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: drtransfer-raising\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[drtransfer]\nraising = drtransfer_raising\n")
    return directory


def test_a_raising_notification_plugin_neither_fails_nor_stops_the_upload(drfc_run: DrfcRun, tmp_path: Path) -> None:
    site = install_raising_plugin(tmp_path / "site")
    result = drfc_run.upload_cmd("-f", PYTHONPATH=str(site))
    assert result.returncode == 0, result.stderr
    last = checkpoint_name(10)
    tree = list_tree(drfc_run.upload, drfc_run.upload_bucket, f"{TARGET}/")
    assert tree[f"{TARGET}/model/.coach_checkpoint"] == last.encode()
    assert f"{TARGET}/model/{last}.index" in tree
    warnings = [line for line in result.stderr.splitlines() if "notification failed" in line]
    assert len(warnings) == 1, result.stderr
    assert "plugin 'raising'" in warnings[0]
    assert "RuntimeError: the pager service is down" in warnings[0]
