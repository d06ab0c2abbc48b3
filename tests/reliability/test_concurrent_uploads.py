"""Two ``drtransfer upload`` commands for the same runs and targets at the same time: one
uploads, the other refuses with a clear sentence naming the first; the targets end correct."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from drtransfer.locals3 import SeaweedServer
from tests.infra.drfc import json_lines
from tests.infra.faultproxy import FaultProxy
from tests.reliability.conftest import check_target_model, make_setup, no_uploads_left, single_sentence


def test_a_second_upload_to_the_same_targets_refuses(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    proxy_for: Callable[[SeaweedServer], FaultProxy],
) -> None:  # fmt: skip
    source = proxy_for(local_s3)
    source.bandwidth = 256 * 1024  # per connection: the upload lasts seconds, both commands overlap
    setup = make_setup(tmp_path, local_s3, upload_s3, local_bucket, upload_bucket, local_url=source.url)
    args = ("upload", *setup.upload_args(), "-f", "--processes", "1", "--concurrency", "2", "--json")

    first, second = setup.start(*args), setup.start(*args)  # at the same time
    codes = {first.pid: first.finish(), second.pid: second.finish()}

    assert sorted(codes.values()) == [0, 2], (first.stderr, second.stderr)
    winner, loser = (first, second) if codes[first.pid] == 0 else (second, first)
    [line] = [line for line in loser.stderr_lines() if line.strip()]
    single_sentence(line)
    match = re.fullmatch(
        r"drtransfer: error: Another drtransfer command \(pid (\d+) since [0-9:]+\) is writing to "
        r"s3://\S+/(alpha|beta|gamma)-up; wait for it to finish and run this one again\.",
        line,
    )
    assert match and int(match.group(1)) == winner.pid, line
    assert loser.stdout == ""
    for run_id, _prefix in setup.runs:
        assert check_target_model(setup, run_id, 2)[0] == "complete"
    no_uploads_left(upload_s3, upload_bucket)

    source.bandwidth = 0
    again = setup.command(*args)  # the lock went with the first command
    assert again.returncode == 0, again.stderr
    assert all(line["skipped"] == line["objects"] for line in json_lines(again.stdout))
