"""Import names and targets, checked before anything is copied (core's prepare_imports)."""

from __future__ import annotations

import dataclasses

import pytest

from drtransfer.errors import ConfigError
from drtransfer.importing import ImportOptions, check_name, default_target, needs_local_model, prepare_imports
from drtransfer.plugins import get_plugin_manager
from drtransfer.workflow import PreparedModel
from tests.plugins.factory import make_run


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("rl_deepracer_sagemaker", "contains '_'"),
        ("models/alpha", "contains '/'"),
        ("my model", "contains a space"),
        ("modèle", "contains 'è'"),
        ("m" * 65, "is 65 characters long (at most 64)"),
        ("", "is empty"),
    ],
)
def test_an_invalid_name_is_refused_naming_the_offending_character(name: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_name(name, "DR_UPLOAD_S3_PREFIX of run 0 (x)")
    message = str(caught.value)
    assert named in message
    assert "DR_UPLOAD_S3_PREFIX of run 0 (x)" in message
    assert "letters, digits and hyphens" in message
    assert message.count(".") <= 2 and "\n" not in message  # one sentence


def test_valid_names_pass() -> None:
    for name in ("a", "Model-2024-final", "x" * 64):
        assert check_name(name, "test") == name


def test_the_default_target_is_droa_when_DR_DROA_URL_is_set() -> None:
    chosen, host = ImportOptions(environ={}), get_plugin_manager()
    assert default_target(make_run(values={"DR_DROA_URL": "https://droa.example"}), chosen, host) == "droa"
    assert default_target(make_run(), chosen, host) == "aws-console"
    assert default_target(make_run(), ImportOptions(environ={"DR_DROA_URL": "https://d.example"}), host) == "droa"


def test_each_importer_says_whether_it_reads_the_local_model_and_when_it_is_the_default() -> None:
    host = get_plugin_manager()
    assert needs_local_model(host, "droa") and not needs_local_model(host, "aws-console")
    with pytest.raises(ConfigError, match="No import target is the default for run 0"):
        default_target(make_run(), ImportOptions(environ={}), get_plugin_manager(disabled=["aws-console"]))


def test_one_name_for_several_runs_is_refused() -> None:
    models = [PreparedModel(make_run("0", "alpha")), PreparedModel(make_run("1", "beta"))]
    with pytest.raises(ConfigError, match="each model needs its own name"):
        prepare_imports(get_plugin_manager(), models, target="droa", name="shared", options=ImportOptions(environ={}))


def test_two_runs_with_the_same_upload_prefix_are_refused() -> None:
    first, second = make_run("0", "alpha"), make_run("1", "beta")
    second = dataclasses.replace(second, upload_prefix=first.upload_prefix)
    with pytest.raises(ConfigError, match="would both be imported into aws-console as 'alpha-up'"):
        prepare_imports(get_plugin_manager(), [PreparedModel(first), PreparedModel(second)], target="aws-console",
                        name=None, options=ImportOptions(environ={}))


def test_an_invalid_default_name_names_the_run_and_the_character() -> None:
    run = make_run("3", "rl_deepracer")
    with pytest.raises(ConfigError) as caught:
        prepare_imports(get_plugin_manager(), [PreparedModel(run)], target="droa", name=None,
                        options=ImportOptions(environ={}))
    assert "'rl_deepracer-up'" in str(caught.value) and "contains '_'" in str(caught.value)
    assert "run 3" in str(caught.value)


def test_without_any_importer_the_error_says_none_is_installed() -> None:
    host = get_plugin_manager(load_entrypoints=False)
    with pytest.raises(ConfigError) as caught:
        prepare_imports(host, [PreparedModel(make_run())], target=None, name=None, options=ImportOptions(environ={}))
    assert "No importer is installed" in str(caught.value)
    assert "drtransfer-plugins" in str(caught.value)


def test_an_unknown_target_lists_the_installed_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        prepare_imports(get_plugin_manager(), [PreparedModel(make_run())], target="sagemaker", name=None,
                        options=ImportOptions(environ={}))
    assert "'sagemaker'" in str(caught.value)
    assert "aws-console" in str(caught.value) and "droa" in str(caught.value)
