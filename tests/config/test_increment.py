"""increment_upload_prefix (-1): DRfC's increment rules with the numeric-suffix fix, rewriting one line only."""

from __future__ import annotations

import os
import stat

import pytest

from drtransfer.config import apply_increment, increment_upload_prefix, load_runs
from drtransfer.errors import ConfigError
from tests.config.conftest import DrfcDir


@pytest.mark.parametrize(
    ("written", "rewritten", "returned"),
    [
        ("my-model-3", "my-model-4", "my-model-4"),
        ("my-model-9", "my-model-10", "my-model-10"),
        ("my-model-009", "my-model-010", "my-model-010"),  # zero padding kept (DRfC's bc would drop it)
        ("7", "8", "8"),
        ("my-model", "my-model-1", "my-model-1"),  # no suffix
        ("my-model-abc", "my-model-abc-1", "my-model-abc-1"),  # DRfC made this my-model-1 (its regex bug)
        ("my-model-2b", "my-model-2b-1", "my-model-2b-1"),
        ("$DR_LOCAL_S3_MODEL_PREFIX-1", "$DR_LOCAL_S3_MODEL_PREFIX-2", "rl-model-2"),  # DRfC's template line
        ("${DR_LOCAL_S3_MODEL_PREFIX}-41", "${DR_LOCAL_S3_MODEL_PREFIX}-42", "rl-model-42"),
        ("$DR_LOCAL_S3_MODEL_PREFIX", "$DR_LOCAL_S3_MODEL_PREFIX-1", "rl-model-1"),
        ("rotate-$UPLOAD_COUNTER", "rotate-$UPLOAD_COUNTER-1", "rotate-5-1"),  # utils/upload-rotate.sh style
        ('"my-model-3"', '"my-model-4"', "my-model-4"),
        ("'my-model'", "'my-model-1'", "my-model-1"),
        ("$DR_SYSTEM_STEM-v-2", "$DR_SYSTEM_STEM-v-3", "from-system-v-3"),  # expansion sees system.env
    ],
)
def test_increment_rules(drfc: DrfcDir, written: str, rewritten: str, returned: str) -> None:
    drfc.system("DR_SYSTEM_STEM=from-system\n")
    run_file = drfc.run("run.env", "0", "rl-model", upload_prefix=written)
    before = run_file.read_text()

    new_prefix = increment_upload_prefix(run_file, environ={**drfc.environ, "UPLOAD_COUNTER": "5"})

    assert new_prefix == returned
    assert run_file.read_text() == before.replace(
        f"DR_UPLOAD_S3_PREFIX={written}\n", f"DR_UPLOAD_S3_PREFIX={rewritten}\n"
    )
    assert run_file.read_text() != before


def test_only_the_effective_line_changes_and_every_other_byte_stays(drfc: DrfcDir) -> None:
    drfc.system()
    original = (
        "# DR_UPLOAD_S3_PREFIX=commented-7 (left alone)\n"
        "DR_RUN_ID=0\n"
        "DR_UPLOAD_S3_PREFIX=overridden-1\n"
        "  DR_WORLD_NAME=reinvent_base\t\n"
        "DR_LOCAL_S3_MODEL_PREFIX=rl-model\n"
        "export DR_UPLOAD_S3_PREFIX=rl-model-v-12   # bumped by -1\n"
        "DR_CAR_NAME=Väsen\n"
        "\n"
        "DR_H2B_BOT_CAR_PENALTY=5.0"
    )
    run_file = drfc.write("run.env", original)
    run_file.chmod(0o640)

    assert increment_upload_prefix(run_file, environ=drfc.environ) == "rl-model-v-13"

    expected = original.replace("rl-model-v-12   #", "rl-model-v-13   #")
    assert run_file.read_bytes() == expected.encode()
    assert stat.S_IMODE(run_file.stat().st_mode) == 0o640
    assert sorted(p.name for p in run_file.parent.iterdir()) == ["run.env", "system.env"]  # no temp files left
    (run,) = load_runs([run_file], environ=drfc.environ)
    assert run.upload_prefix == "rl-model-v-13"


def test_a_symlinked_run_file_keeps_its_link(drfc: DrfcDir) -> None:
    drfc.system()
    real = drfc.run("configs/run-real.env", "0", "m", upload_prefix="m-1")
    link = drfc.root / "run.env"
    link.symlink_to(real)

    assert increment_upload_prefix(link, environ=drfc.environ) == "m-2"

    assert link.is_symlink() and os.readlink(link) == str(real)
    assert "DR_UPLOAD_S3_PREFIX=m-2\n" in real.read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("DR_RUN_ID=0\n# DR_UPLOAD_S3_PREFIX=old-1\n", "has no DR_UPLOAD_S3_PREFIX line to increment"),
        ("DR_RUN_ID=0\nDR_UPLOAD_S3_PREFIX=\n", "line 2: DR_UPLOAD_S3_PREFIX is empty; set a prefix before using -1."),
        ("DR_RUN_ID=0\nDR_UPLOAD_S3_PREFIX=a b\n", "line 2: the value of 'DR_UPLOAD_S3_PREFIX' contains whitespace"),
    ],
)
def test_nothing_to_increment_is_an_error_and_the_file_stays(drfc: DrfcDir, content: str, message: str) -> None:
    drfc.system()
    run_file = drfc.write("run.env", content)
    with pytest.raises(ConfigError) as error:
        increment_upload_prefix(run_file, environ=drfc.environ)
    assert str(error.value).startswith(str(run_file)) and message in str(error.value)
    assert run_file.read_text() == content


def test_a_missing_run_file_is_named(drfc: DrfcDir) -> None:
    missing = drfc.root / "gone.env"
    with pytest.raises(ConfigError, match=f"^{missing} does not exist"):
        increment_upload_prefix(missing, environ=drfc.environ)


def test_repeated_increments_in_an_activated_shell_keep_moving_forward(drfc: DrfcDir) -> None:
    """The -1 loop: the shell keeps the prefix it was activated with; each upload goes into the next prefix
    and the file moves on to it after the upload."""
    drfc.system()
    run_file = drfc.run("run.env", "0", "rl-model")  # $DR_LOCAL_S3_MODEL_PREFIX-1
    activated = drfc.activated(run_file, dict(load_runs([run_file], environ=drfc.environ)[0].values))

    targets = []
    for _ in range(3):
        (run,) = load_runs(environ=activated, increment=True)
        targets.append(run.upload_prefix)
        assert run.increment is not None
        assert apply_increment(run.increment) == run.upload_prefix

    assert targets == ["rl-model-2", "rl-model-3", "rl-model-4"]
    assert "DR_UPLOAD_S3_PREFIX=$DR_LOCAL_S3_MODEL_PREFIX-4\n" in run_file.read_text()


def test_loading_with_increment_targets_the_next_prefix_and_edits_nothing_yet(drfc: DrfcDir) -> None:
    drfc.system()
    run_file = drfc.run("run.env", "0", "rl-model", upload_prefix="inc-7")
    before = run_file.read_bytes()

    (run,) = load_runs([run_file], environ=drfc.environ, increment=True)

    assert run.upload_prefix == "inc-8"
    assert run.values["DR_UPLOAD_S3_PREFIX"] == "inc-8"  # what plugins and import names read
    assert run.target_url == "s3://upload-bucket/inc-8"
    assert run.increment is not None
    assert (run.increment.old_value, run.increment.new_value) == ("inc-7", "inc-8")
    assert run_file.read_bytes() == before
    (plain,) = load_runs([run_file], environ=drfc.environ)
    assert plain.upload_prefix == "inc-7" and plain.increment is None

    assert apply_increment(run.increment) == "inc-8"
    assert run_file.read_bytes() == before.replace(b"DR_UPLOAD_S3_PREFIX=inc-7\n", b"DR_UPLOAD_S3_PREFIX=inc-8\n")


def test_the_incremented_prefix_wins_over_an_exported_one_and_a_flag_wins_over_both(drfc: DrfcDir) -> None:
    drfc.system()
    run_file = drfc.run("run.env", "0", "rl-model", upload_prefix="inc-7")
    exported = {**drfc.environ, "DR_UPLOAD_S3_PREFIX": "exported-3"}  # no DR_CONFIG: not an activated shell

    (run,) = load_runs([run_file], environ=exported, increment=True)
    assert run.upload_prefix == "inc-8"  # DRfC's increment.sh exports the new value over the old

    (flagged,) = load_runs([run_file], environ=exported, increment=True, overrides={"DR_UPLOAD_S3_PREFIX": "p"})
    assert flagged.upload_prefix == "p"
    assert flagged.increment is not None and flagged.increment.new_value == "inc-8"


def test_checks_between_runs_see_the_incremented_prefixes(drfc: DrfcDir) -> None:
    drfc.system()
    first = drfc.run("a.env", "0", "model-a", upload_prefix="shared")
    second = drfc.run("b.env", "1", "model-b", upload_prefix="shared-0")
    load_runs([first, second], environ=drfc.environ)  # distinct as written

    with pytest.raises(ConfigError, match=r"both upload to s3://upload-bucket/shared-1; give each its own"):
        load_runs([first, second], environ=drfc.environ, increment=True)
    assert "DR_UPLOAD_S3_PREFIX=shared\n" in first.read_text()


def test_an_incremented_prefix_equal_to_the_source_is_refused_naming_the_increment(drfc: DrfcDir) -> None:
    drfc.system()
    run_file = drfc.run("run.env", "0", "m-2", upload_prefix="m-1")

    with pytest.raises(ConfigError) as error:
        load_runs([run_file], environ=drfc.environ, increment=True, local_target=True)

    assert str(error.value).endswith(
        f"(s3://bucket/m-2): -1 makes DR_UPLOAD_S3_PREFIX m-2 (m-1 in {run_file}), which is the source prefix; "
        f"change DR_UPLOAD_S3_PREFIX in {run_file}."
    )


def test_nothing_to_increment_is_refused_when_loading(drfc: DrfcDir) -> None:
    drfc.system()
    run_file = drfc.write("run.env", "DR_RUN_ID=0\nDR_LOCAL_S3_MODEL_PREFIX=m\n")
    with pytest.raises(ConfigError, match="has no DR_UPLOAD_S3_PREFIX line to increment"):
        load_runs([run_file], environ={**drfc.environ, "DR_UPLOAD_S3_PREFIX": "m-1"}, increment=True)


def test_increment_needs_a_run_file(drfc: DrfcDir) -> None:
    environ = {**drfc.environ, "DR_CLOUD": "local", "DR_UPLOAD_S3_BUCKET": "b", "DR_UPLOAD_S3_PREFIX": "m-1"}
    with pytest.raises(ConfigError, match=r"^-1 needs a run file to edit"):
        load_runs(environ=environ, increment=True)


def test_a_run_file_changed_after_loading_is_left_alone(drfc: DrfcDir) -> None:
    drfc.system()
    run_file = drfc.run("run.env", "0", "rl-model", upload_prefix="inc-7")
    (run,) = load_runs([run_file], environ=drfc.environ, increment=True)
    assert run.increment is not None
    edited = run_file.read_text().replace("DR_UPLOAD_S3_PREFIX=inc-7", "DR_UPLOAD_S3_PREFIX=by-hand-1")
    run_file.write_text(edited)

    with pytest.raises(ConfigError) as error:
        apply_increment(run.increment)

    assert str(error.value) == (
        f"{run_file} line 11 changed since the upload started (DR_UPLOAD_S3_PREFIX is no longer inc-7); it was "
        f"left as it is: set DR_UPLOAD_S3_PREFIX=inc-8 by hand if that is the name you want next."
    )
    assert run_file.read_text() == edited
