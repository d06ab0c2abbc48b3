"""The AWS DeepRacer console before any upload: the role ARN, the paginated duplicate-name check, the
signature and the service definition (a fake console speaking JSON 1.1 on 127.0.0.1)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest

from drtransfer.endpoints import Credentials
from drtransfer.errors import ConfigError
from drtransfer.importing import prepare_imports
from drtransfer.workflow import PreparedModel
from drtransfer_plugins.aws_console.client import PLUGIN_MODELS, deepracer_client, definition_path
from tests.importers.conftest import ROLE, Runs, options
from tests.infra.console_server import FakeConsole


def console_values(console: FakeConsole) -> dict[str, str]:
    return {"DR_UPLOAD_S3_ROLE": ROLE, "DR_DEEPRACER_ENDPOINT_URL": console.url}


def test_a_free_name_passes_after_reading_every_page(runs: Runs, console: FakeConsole, tmp_path: Path) -> None:
    runs.values.update(console_values(console))
    models = [PreparedModel(runs.run("0", "alpha")), PreparedModel(runs.run("1", "beta"))]
    items = prepare_imports(runs.host, models, target="aws-console", name=None, options=options(tmp_path))
    assert [i.name for i in items] == ["alpha-up", "beta-up"]
    pages = console.operations("ListModels")
    assert len(pages) == 2  # 30 models, 25 a page: both pages, then the listing is reused for the second run
    assert "NextToken" not in pages[0] and pages[1]["NextToken"]
    assert all(p["ModelType"] == "REINFORCEMENT_LEARNING" for p in pages)


def test_a_duplicate_name_on_the_second_page_is_refused(runs: Runs, console: FakeConsole, tmp_path: Path) -> None:
    runs.values.update(console_values(console))
    with pytest.raises(ConfigError) as caught:
        prepare_imports(runs.host, [PreparedModel(runs.run("0", "alpha", upload_prefix="taken-name"))],
                        target="aws-console", name=None, options=options(tmp_path))
    assert str(caught.value).startswith("A model named 'taken-name' already exists in the AWS DeepRacer console;")
    assert console.operations("ImportModel") == []


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("", "needs an IAM role: set DR_UPLOAD_S3_ROLE"),
        ("to-be-defined", "needs an IAM role: set DR_UPLOAD_S3_ROLE"),
        ("arn:aws:iam::12345:role/short-account", "is not an IAM role ARN"),
        ("DeepRacerImport", "is not an IAM role ARN"),
    ],
)
def test_the_role_is_required_and_validated(
    runs: Runs, console: FakeConsole, tmp_path: Path, role: str, expected: str
) -> None:
    runs.values.update({**console_values(console), "DR_UPLOAD_S3_ROLE": role})
    with pytest.raises(ConfigError, match=expected):
        prepare_imports(runs.host, [PreparedModel(runs.run("0", "alpha"))], target="aws-console", name=None,
                        options=options(tmp_path))
    assert console.calls == []  # refused before any call


def test_refused_credentials_and_an_unreachable_console_are_one_sentence(
    runs: Runs, console: FakeConsole, tmp_path: Path
) -> None:
    runs.values.update(console_values(console))
    run = runs.run("0", "alpha")
    assert run.upload is not None
    stranger = dataclasses.replace(run.upload, credentials=Credentials("AKIASTRANGER", "not-the-secret"))
    wrong = dataclasses.replace(run, upload=stranger)
    refused = r"refused the credentials to list the existing models \(InvalidSignatureException"
    with pytest.raises(ConfigError, match=refused):
        prepare_imports(runs.host, [PreparedModel(wrong)], target="aws-console", name=None, options=options(tmp_path))
    runs.values["DR_DEEPRACER_ENDPOINT_URL"] = "http://127.0.0.1:9"
    unreachable = "Cannot reach the AWS DeepRacer console at http://127.0.0.1:9 to list the existing models;"
    with pytest.raises(ConfigError, match=re.escape(unreachable)):
        prepare_imports(runs.host, [PreparedModel(runs.run("0", "alpha"))], target="aws-console", name=None,
                        options=options(tmp_path))


def test_the_plugin_definition_is_used_unless_install_cli_put_one_in_aws_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert definition_path().is_relative_to(PLUGIN_MODELS)
    client = deepracer_client(Credentials("a", "b"), endpoint_url="http://127.0.0.1:9")
    assert sorted(client.meta.service_model.operation_names) == ["GetModel", "ImportModel", "ListModels"]
    model = client.meta.service_model
    assert (model.signing_name, model.protocol, model.metadata["targetPrefix"]) == (
        "deepracer", "json", "AwsSilverstoneCloudService")

    installed = tmp_path / ".aws" / "models" / "deepracer" / "2019-04-01" / "service-2.json"
    installed.parent.mkdir(parents=True)
    shutil.copy(definition_path(), installed)
    data = json.loads(installed.read_text())
    data["operations"]["ListTracks"] = {"name": "ListTracks", "http": {"method": "POST", "requestUri": "/"}}
    installed.write_text(json.dumps(data))
    assert definition_path() == installed
    client = deepracer_client(Credentials("a", "b"), endpoint_url="http://127.0.0.1:9")
    assert "ListTracks" in client.meta.service_model.operation_names
