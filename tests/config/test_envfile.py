"""Reading DRfC env files as DRfC's dr-update-env reads them (drtransfer.envfile)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from drtransfer.envfile import parse_env_text, read_env_file
from drtransfer.errors import ConfigError
from tests.config.conftest import SYSTEM_ENV, run_env

# Lines DRfC's loop reads without complaint; every form our parser accepts, next to real template lines.
ACCEPTED = (
    SYSTEM_ENV
    + run_env("3", "rl-deepracer-sagemaker")
    + """
  # an indented comment with plain words
DR_QUOTED_DOUBLE="double-quoted"
DR_QUOTED_SINGLE='$DR_CAR_NAME-stays-literal'
DR_MIXED="${DR_CAR_NAME}"'-'x\\-y
DR_ESCAPED="a\\$b\\"c\\\\d"
DR_BRACES=${DR_LOCAL_S3_MODEL_PREFIX}-2
DR_DEFAULT=${DR_UNSET_VARIABLE:-fallback-$DR_CAR_NAME}
DR_DEFAULT_EMPTY=${DR_KINESIS_STREAM_NAME:-was-empty}
DR_DEFAULT_SET_EMPTY=${DR_KINESIS_STREAM_NAME-not-used}
DR_FROM_PROCESS=model-$UPLOAD_COUNTER
DR_UNKNOWN=[$DR_NOT_SET_ANYWHERE]
DR_HOME=~/models
DR_LONE_DOLLAR=price$
DR_HASH_INSIDE=a#b
DR_BRACE_LITERAL=a{b}c
DR_BRACE_QUOTED='{1,2}'
DR_TRAILING_COMMENT=1   # the number of laps
export DR_EXPORTED=yes
\t
DR_REDEFINED=first
DR_REDEFINED=second
"""
)


def drfc_loop(text: str, tmp_path: Path, environ: dict[str, str]) -> dict[str, str]:
    """Run DRfC's own loading loop (bin/activate.sh dr-update-env) in bash and return the DR_* it exports."""
    env_file = tmp_path / "loop.env"
    env_file.write_text(text)
    script = r"""
LINES=$(grep -v '^#' "$1")
for l in $LINES; do
  env_var=$(echo $l | cut -f1 -d\=)
  env_val=$(echo $l | cut -f2 -d\=)
  eval "export $env_var=$env_val"
done
env -0 > "$2"
"""
    out = tmp_path / "exported"
    empty = tmp_path / "cwd"  # the loop globs its words; keep the working directory empty
    empty.mkdir()
    subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script, "loop", str(env_file), str(out)],
        env=environ,
        cwd=empty,
        check=True,
        capture_output=True,
        timeout=60,
    )
    pairs = (item.split("=", 1) for item in out.read_text().split("\0") if item)
    return {key: value for key, value in pairs if key.startswith("DR_")}


def test_every_accepted_line_gives_the_value_drfc_gives(tmp_path: Path) -> None:
    environ = {"HOME": "/home/racer", "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "UPLOAD_COUNTER": "7"}
    parsed = parse_env_text(ACCEPTED, Path("system+run.env"), {}, environ).values()

    assert parsed == drfc_loop(ACCEPTED, tmp_path, environ)
    # Spot checks, so a shared misunderstanding of bash would still show up here.
    assert parsed["DR_UPLOAD_S3_PREFIX"] == "rl-deepracer-sagemaker-1"
    assert parsed["DR_LOCAL_S3_REWARD_KEY"] == "custom_files/reward_function.py"
    assert parsed["DR_LOCAL_S3_METRICS_PREFIX"] == "rl-deepracer-sagemaker/metrics"
    assert parsed["DR_DISPLAY_NAME"] == "FastCar"
    assert parsed["DR_QUOTED_SINGLE"] == "$DR_CAR_NAME-stays-literal"
    assert parsed["DR_MIXED"] == "FastCar-x-y"
    assert parsed["DR_ESCAPED"] == 'a$b"c\\d'
    assert parsed["DR_DEFAULT"] == "fallback-FastCar"
    assert parsed["DR_DEFAULT_EMPTY"] == "was-empty"
    assert parsed["DR_DEFAULT_SET_EMPTY"] == ""
    assert parsed["DR_FROM_PROCESS"] == "model-7"
    assert parsed["DR_UNKNOWN"] == "[]"
    assert parsed["DR_HOME"] == "/home/racer/models"
    assert parsed["DR_TRAILING_COMMENT"] == "1"
    assert parsed["DR_REDEFINED"] == "second"
    assert parsed["DR_H2B_BOT_CAR_PENALTY"] == "5.0"  # last line without a newline
    assert "DR_REMOTE_MINIO_URL" not in parsed and "DR_EVAL_RTF" not in parsed


def test_expansion_sees_earlier_files_then_the_process_environment() -> None:
    text = "DR_A=$DR_FROM_SYSTEM/$DR_ONLY_IN_PROCESS\nDR_FROM_SYSTEM=redefined\nDR_B=$DR_FROM_SYSTEM\n"
    parsed = parse_env_text(
        text,
        Path("run.env"),
        known={"DR_FROM_SYSTEM": "system"},
        environ={"DR_FROM_SYSTEM": "process", "DR_ONLY_IN_PROCESS": "proc"},
    )
    assert parsed.values() == {"DR_A": "system/proc", "DR_FROM_SYSTEM": "redefined", "DR_B": "redefined"}


def test_assignments_remember_where_the_raw_value_is() -> None:
    text = "# comment\n\nexport DR_UPLOAD_S3_PREFIX=$DR_X-1 # note\n"
    (assignment,) = parse_env_text(text, Path("run.env"), {"DR_X": "m"}).assignments
    line = text.split("\n")[assignment.line - 1]
    assert assignment.line == 3
    assert line[assignment.start : assignment.start + len(assignment.raw)] == "$DR_X-1"
    assert assignment.value == "m-1"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("DR_UPLOAD_S3_PREFIX", "'DR_UPLOAD_S3_PREFIX' has no '='; write KEY=VALUE."),
        ("DR_X =1", "'DR_X' has spaces around '='; write DR_X=VALUE without spaces."),
        ("DR_X= 1", "'DR_X' has spaces around '='"),
        ("DR-X=1", "'DR-X' is not a valid variable name"),
        ("1DR=1", "'1DR' is not a valid variable name"),
        ("DR_X=a=b", "contains a second '=', and DRfC keeps only the text before it"),
        ("DR_X='open", "has an unterminated ' quote"),
        ('DR_X="open', 'has an unterminated " quote'),
        ('DR_X="two words"', "contains whitespace, which DRfC splits into separate words"),
        ("DR_X=two words", "contains whitespace"),
        ("DR_X=$(whoami)", "uses $(...), which deepracer-transfer does not run"),
        ("DR_X=`whoami`", "command substitution"),
        ("DR_CLOUD=<CLOUD_REPLACE>", "contains an unquoted '<'"),
        ("DR_X=a;b", "contains an unquoted ';'"),
        ("DR_X=model-{1,2}", "uses brace expansion"),
        ("DR_X=model-{1..3}", "uses brace expansion"),
        ("DR_X=${DR_Y/a/b}", "uses ${DR_Y/a/b}, which is not supported"),
        ("DR_X=${DR_Y", "unterminated ${...}"),
        ("DR_X=$1", "special parameter $1"),
        ("DR_X=~racer/models", "another user's home"),
        ("DR_X=trailing\\", "ends with a backslash"),
        ("DR_X=1 # was DR_Y=2", "DRfC would still apply 'DR_Y=2' from this comment"),
        ("   # DR_UPLOAD_S3_BUCKET=old", "DRfC would still apply 'DR_UPLOAD_S3_BUCKET=old'"),
        ("DR_X=1 # see DR_Y", "DRfC would still apply 'DR_Y'"),
        ("DR_X=1\r", "Windows line ending (CR)"),
    ],
)
def test_malformed_lines_name_the_file_the_line_and_the_fix(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "run.env"
    path.write_text(
        f"# DRfC run file\nDR_RUN_ID=0\n\n#DR_EVAL_RTF=1.0\nDR_WORLD_NAME=reinvent_base\n\n{line}\nDR_Z=1\n"
    )
    with pytest.raises(ConfigError) as error:
        read_env_file(path)
    assert str(error.value).startswith(f"{path} line 7: ")
    assert message in str(error.value)
    assert str(error.value).endswith(".")


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "run.env"
    with pytest.raises(ConfigError, match=f"^{path} does not exist; check the path.$"):
        read_env_file(path)


def test_unreadable_files_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"^{tmp_path} is a directory"):
        read_env_file(tmp_path)
    latin1 = tmp_path / "system.env"
    latin1.write_bytes(b"DR_CAR_NAME=V\xe9lo\n")
    with pytest.raises(ConfigError, match=f"^{latin1} is not UTF-8 text"):
        read_env_file(latin1)
