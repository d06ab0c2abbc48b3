"""``drtransfer upload -i``'s job in-process (:func:`drtransfer.jobs.upload`), with the real engine:
prepare, the import checks, the confirmation, execute, then the imports; several runs with both targets
at once. A failed import never hides a successful upload: each outcome keeps its upload result and
carries its import result beside it."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from drtransfer.engine import EngineSettings
from drtransfer.errors import ConfigError
from drtransfer.jobs import ImportSpec, UploadRequest, upload
from drtransfer.workflow import PreparedModel
from drtransfer_cli.commands.import_ import secret_source
from tests.conftest import PASSWORD, droa_values, list_tree
from tests.importers.conftest import ROLE, Runs
from tests.infra.console_server import ConsoleModel, FakeConsole
from tests.infra.droa_server import FakeDroa

ENGINE = EngineSettings(processes=0, concurrency=4)


@pytest.fixture
def password_on_stdin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    monkeypatch.setenv("DRTRANSFER_CACHE_DIR", str(tmp_path / "cache"))


def test_upload_then_import_into_both_targets(
    runs: Runs, droa: FakeDroa, console: FakeConsole, password_on_stdin: None
) -> None:
    droa.polls_until_done = console.polls_until_done = 1
    runs.values.update({"DR_UPLOAD_S3_ROLE": ROLE, "DR_DEEPRACER_ENDPOINT_URL": console.url})
    for run_id, prefix in (("0", "alpha"), ("1", "beta"), ("2", "gamma")):
        runs.seed(run_id, prefix)
    chosen = [runs.run("0", "alpha", **droa_values(droa)), runs.run("1", "beta"), runs.run("2", "gamma")]

    def confirm(prepared: object) -> bool:
        # Someone takes the name between the check and the import.
        console.models.append(ConsoleModel("gamma-up", console.models[0].arn + "x"))
        return True

    request = UploadRequest(chosen, engine=ENGINE, imports=ImportSpec(wait=True, secret=secret_source(True)))
    report = upload(request, host=runs.host, confirm=confirm)
    imports, outcomes, results = report.imports, report.outcomes, report.import_results
    assert [i.target for i in imports] == ["droa", "aws-console", "aws-console"]

    assert [o.result.status for o in outcomes] == ["ok", "ok", "ok"]  # every upload went through ...
    assert [(r.target, r.status) for r in results] == [("droa", "ready"), ("aws-console", "ready"),
                                                       ("aws-console", "failed")]
    gamma = outcomes[2].extra["import"]
    assert gamma["status"] == "failed"  # ... and the failed import is reported beside it
    assert gamma["message"] == ("The AWS DeepRacer console refused to import 'gamma-up': ConflictException: "
                                "Model gamma-up already exists.")
    assert list_tree(runs.upload, runs.upload_bucket, "gamma-up/")  # the upload is still there, intact
    [droa_model] = droa.models
    assert droa_model.name == "alpha-up"
    [beta] = [c for c in console.operations("ImportModel") if c["Name"] == "beta-up"]
    assert beta["ModelArtifactsS3Path"] == f"s3://{runs.upload_bucket}/beta-up"


def test_a_failed_upload_skips_its_import(runs: Runs, console: FakeConsole, password_on_stdin: None) -> None:
    runs.values.update({"DR_UPLOAD_S3_ROLE": ROLE, "DR_DEEPRACER_ENDPOINT_URL": console.url})
    runs.seed("0", "alpha")
    runs.seed("1", "beta")

    def confirm(prepared: list[PreparedModel]) -> bool:
        assert prepared[0].selection is not None
        gone = prepared[0].selection.checkpoint.files["pb"].location.key
        runs.local.client().delete_object(Bucket=runs.local_bucket, Key=gone)  # vanishes after planning
        return True

    request = UploadRequest(
        [runs.run("0", "alpha"), runs.run("1", "beta")],
        engine=EngineSettings(processes=0, concurrency=4, max_attempts=1, client_max_attempts=1),
        imports=ImportSpec(target="aws-console", secret=secret_source(False)),
    )
    report = upload(request, host=runs.host, confirm=confirm)  # type: ignore[arg-type]
    outcomes, results = report.outcomes, report.import_results
    assert outcomes[0].result.status == "failed" and outcomes[1].result.status == "ok"
    assert (results[0].status, results[0].message) == ("skipped", "not imported because its upload failed.")
    assert results[1].status == "submitted"
    assert [c["Name"] for c in console.operations("ImportModel")] == ["beta-up"]


def test_a_dry_run_checks_names_but_imports_nothing(runs: Runs, console: FakeConsole, password_on_stdin: None) -> None:
    runs.values.update({"DR_UPLOAD_S3_ROLE": ROLE, "DR_DEEPRACER_ENDPOINT_URL": console.url})
    runs.seed("0", "alpha")
    spec = ImportSpec(target="aws-console", secret=secret_source(False))
    with pytest.raises(ConfigError, match="contains '_'"):
        upload(UploadRequest([runs.run("0", "alpha", upload_prefix="alpha_1")], dry_run=True, engine=ENGINE,
                             imports=spec), host=runs.host)
    dry = EngineSettings(processes=0, dry_run=True)
    report = upload(UploadRequest([runs.run("0", "alpha")], dry_run=True, engine=dry, imports=spec), host=runs.host)
    [result] = report.import_results
    assert (result.status, result.message) == ("skipped", "not imported because it was a dry run.")
    assert console.calls == []
