"""DRoA before any upload: discovery, DRoA's checks first, the Cognito sign-in and its 0600 cache.

Cognito is a moto server; the website, API and upload-bucket front are the fake DRoA on real listeners.
Every failure here is one ConfigError sentence and nothing reaches DRoA's bucket or ``POST /importmodel``.
"""

from __future__ import annotations

import datetime
import json
import stat
from pathlib import Path

import pytest

from drtransfer.errors import ConfigError
from drtransfer.importing import prepare_imports
from drtransfer.operations import SourceObject
from drtransfer.workflow import PreparedModel
from drtransfer_plugins.droa.auth import cache_dir
from tests.conftest import PASSWORD, USERNAME, droa_values, list_tree
from tests.importers.conftest import Runs, Secrets, options
from tests.infra.droa_server import FakeDroa
from tests.infra.sigv4 import Secret


def nothing_sent(droa: FakeDroa) -> None:
    assert ("POST", "/importmodel") not in droa.api_calls
    assert droa.s3_calls == []
    assert list_tree(droa.seaweed, droa.bucket) == {}


def cache_files(tmp_path: Path) -> list[Path]:
    return sorted(cache_dir({"DRTRANSFER_CACHE_DIR": str(tmp_path / "cache")}).glob("*.json"))


def test_sign_in_once_then_reuse_the_0600_cache(runs: Runs, droa: FakeDroa, tmp_path: Path) -> None:
    runs.values.update(droa_values(droa))
    models = [runs.seed("0", "alpha"), runs.seed("1", "beta")]
    secrets = Secrets()
    prepare_imports(runs.host, models, target="droa", name=None, options=options(tmp_path, secrets))
    assert len(secrets.prompts) == 1  # two runs, one site, one user: one password
    assert USERNAME in secrets.prompts[0] and droa.url in secrets.prompts[0]
    assert droa.api_calls == [("GET", "/models")]  # one signed call, accepted by the fake's SigV4 check
    [cached] = cache_files(tmp_path)
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    assert stat.S_IMODE(cached.parent.stat().st_mode) == 0o700
    data = json.loads(cached.read_text())
    assert droa.issued is not None and data["accessKeyId"] == droa.issued.access_key
    assert PASSWORD not in cached.read_text()

    again = Secrets()
    prepare_imports(runs.host, models, target="droa", name=None, options=options(tmp_path, again))
    assert again.prompts == []  # the cached credentials were used
    nothing_sent(droa)


def test_expired_cached_credentials_are_refreshed_by_signing_in_again(
    runs: Runs, droa: FakeDroa, tmp_path: Path
) -> None:
    runs.values.update(droa_values(droa))
    model = runs.seed("0", "alpha")
    prepare_imports(runs.host, [model], target="droa", name=None, options=options(tmp_path, Secrets()))
    [cached] = cache_files(tmp_path)
    data = json.loads(cached.read_text())
    data["expiration"] = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)).isoformat()
    cached.write_text(json.dumps(data))

    secrets = Secrets()
    prepare_imports(runs.host, [model], target="droa", name=None, options=options(tmp_path, secrets))
    assert len(secrets.prompts) == 1
    refreshed = datetime.datetime.fromisoformat(json.loads(cached.read_text())["expiration"])
    assert refreshed > datetime.datetime.now(datetime.UTC)
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600


def test_a_wrong_password_is_one_sentence_and_nothing_is_copied(runs: Runs, droa: FakeDroa, tmp_path: Path) -> None:
    runs.values.update(droa_values(droa))
    with pytest.raises(ConfigError) as caught:
        prepare_imports(runs.host, [runs.seed("0", "alpha")], target="droa", name=None,
                        options=options(tmp_path, Secrets("wrong-password-1")))
    message = str(caught.value)
    assert message.startswith(f"Could not sign in to DRoA at {droa.url} as {USERNAME!r}")
    assert "check DR_DROA_USERNAME and the password" in message
    assert "wrong-password-1" not in message and "\n" not in message
    assert cache_files(tmp_path) == []
    nothing_sent(droa)


def test_without_a_way_to_ask_the_password_the_error_says_password_stdin(
    runs: Runs, droa: FakeDroa, tmp_path: Path
) -> None:
    runs.values.update(droa_values(droa))
    with pytest.raises(ConfigError, match="--password-stdin"):
        prepare_imports(runs.host, [runs.seed("0", "alpha")], target="droa", name=None, options=options(tmp_path))


def test_droa_checks_run_first_with_droa_wording(runs: Runs, droa: FakeDroa, tmp_path: Path) -> None:
    runs.values.update(droa_values(droa))

    def sac_discrete(metadata: dict[str, object]) -> None:
        metadata["training_algorithm"] = "sac"

    models = [runs.seed("0", "alpha", metadata=sac_discrete), runs.seed("1", "beta", params={"CAR_COLOR": "Pink"})]
    secrets = Secrets()
    with pytest.raises(ConfigError) as caught:
        prepare_imports(runs.host, models, target="droa", name=None, options=options(tmp_path, secrets,
                                                                                  description="bad_description"))
    message = str(caught.value)
    assert ("run 0 (alpha) cannot be imported into DRoA: Agent algorithm SAC does not work with discrete action "
            "space.") in message
    assert "Model description must contain only alphanumeric characters, spaces, and hyphen" in message
    assert ("run 1 (beta) cannot be imported into DRoA: Invalid car customization. Car shell DEEPRACER is not "
            "available in color PINK.") in message
    assert secrets.prompts == []  # refused before asking anyone for a password
    nothing_sent(droa)


def test_a_model_over_1_gib_is_refused_before_upload(runs: Runs, droa: FakeDroa, tmp_path: Path) -> None:
    runs.values.update(droa_values(droa))
    model = runs.seed("0", "alpha")
    assert model.selection is not None
    data = model.selection.checkpoint.files[".data-00000-of-00001"]
    huge = SourceObject(data.location, 1024**3, data.etag)  # as listed: the size is all the check reads
    model.selection.checkpoint.files[".data-00000-of-00001"] = huge
    with pytest.raises(ConfigError, match="cannot be imported into DRoA: Folder size exceeds max 1GB limit"):
        prepare_imports(runs.host, [model], target="droa", name=None, options=options(tmp_path, Secrets()))
    nothing_sent(droa)


def test_an_unreachable_website_or_missing_settings_are_clear(runs: Runs, droa: FakeDroa, tmp_path: Path) -> None:
    model = runs.seed("0", "alpha")
    runs.values.update(droa_values(droa))
    for values, expected in (
        ({"DR_DROA_URL": ""}, "needs DR_DROA_URL"),
        ({"DR_DROA_USERNAME": ""}, "needs DR_DROA_USERNAME"),
        ({"DR_DROA_URL": "http://127.0.0.1:9"}, "Cannot reach the DRoA website at http://127.0.0.1:9"),
        ({"DR_DROA_URL": droa.url + "/nothing-here"}, "answered HTTP 404"),
    ):
        run = runs.run("0", "alpha", **values)
        moved = PreparedModel(run, model.inventory, model.selection)
        with pytest.raises(ConfigError, match=expected):
            prepare_imports(runs.host, [moved], target="droa", name=None, options=options(tmp_path, Secrets()))


def test_credentials_droa_refuses_are_one_sentence(runs: Runs, droa: FakeDroa, tmp_path: Path) -> None:
    runs.values.update(droa_values(droa))
    droa.issued = Secret("ASIAOTHERKEY", "other-secret", "other-token")  # DRoA no longer trusts these
    with pytest.raises(ConfigError) as caught:
        prepare_imports(runs.host, [runs.seed("0", "alpha")], target="droa", name=None,
                        options=options(tmp_path, Secrets()))
    assert str(caught.value).startswith(f"DRoA refused the credentials of {USERNAME!r} for GET /models (HTTP 403")
    assert "drtransfer logout" in str(caught.value)
    nothing_sent(droa)
