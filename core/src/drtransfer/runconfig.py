"""One DRfC run as deepracer-transfer sees it: where its model is and where it goes.

Built by :func:`drtransfer.config.load_runs` from DRfC's env files; plain picklable data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from drtransfer.endpoints import Endpoint


@dataclass(frozen=True)
class PrefixIncrement:
    """``-1`` for one run: its run file's ``DR_UPLOAD_S3_PREFIX`` assignment before and after the increment.

    The run uploads into ``new_value``; :func:`drtransfer.config.apply_increment` writes ``new_raw`` over
    ``old_raw`` (``line``, 1-based, from column ``start``) once that upload succeeded.
    """

    run_file: Path
    line: int
    start: int
    old_raw: str
    new_raw: str
    old_value: str
    new_value: str


@dataclass(frozen=True)
class RunConfig:
    """A run (one ``run.env`` or experiment): its source model and its upload target.

    ``values`` holds every variable as DRfC would see it after precedence (flag > process environment >
    run file > system file), for plugins that need more (``DR_WORLD_NAME``, ``DR_DROA_URL`` ...).
    ``increment`` is set when the runs were loaded for ``-1``: ``upload_prefix`` is then already the
    incremented prefix.

    ``prefix_override`` is True when the model prefix was given on the command line (``-p``): it is then
    not the prefix the run trains into, so the run's ``DR_LOCAL_S3_REWARD_KEY`` (the current training's
    reward function) does not belong to that model. ``reward_function`` is ``--reward-function``: a local
    path or an ``s3://bucket/key`` URL on the local endpoint that replaces the model's reward function.

    ``run_id`` is DRfC's ``DR_RUN_ID``, which runs may share (DRfC's template sets 0 for every experiment).
    ``key`` and ``label`` tell the runs of one command apart: :func:`drtransfer.config.load_runs` sets them
    unique among the runs it loads (``key`` identifies the run's plan and results, ``label`` names it in
    messages); left empty, they default to the run id and to :func:`base_label`. ``experiment`` is the
    experiment name (``experiments/NAME/run.env``), None for other run files.

    ``node`` is ``DRTRANSFER_NODE``: the name of the cluster node (a Ray node resource or label) that
    reaches the run's source; on a cluster the run's tasks run there only (None: anywhere).

    ``warnings`` are the sentences about the files read (``DR_*`` names that DRfC does not know);
    ``source_default`` is True when ``model_prefix`` is DRfC's default because no file, exported variable
    or flag set ``DR_LOCAL_S3_MODEL_PREFIX``.
    """

    run_id: str
    local: Endpoint
    local_bucket: str
    model_prefix: str
    upload: Endpoint | None
    upload_bucket: str
    upload_prefix: str
    reward_key: str
    metrics_prefix: str
    region: str
    run_file: Path | None = None
    system_file: Path | None = None
    values: Mapping[str, str] = field(default_factory=dict, repr=False)
    increment: PrefixIncrement | None = None
    prefix_override: bool = False
    reward_function: str | None = None
    experiment: str | None = None
    key: str = ""
    label: str = ""
    warnings: tuple[str, ...] = ()
    source_default: bool = False
    node: str | None = None

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.run_id)
        if not self.label:
            object.__setattr__(self, "label", base_label(self.run_id, self.experiment, self.model_prefix))

    @property
    def source_url(self) -> str:
        return f"s3://{self.local_bucket}/{self.model_prefix}"

    @property
    def target_url(self) -> str:
        return f"s3://{self.upload_bucket}/{self.upload_prefix}"


def label_head(run_id: str, experiment: str | None) -> str:
    """``experiment NAME`` for an experiment, else ``run ID``."""
    return f"experiment {experiment}" if experiment else f"run {run_id}"


def base_label(run_id: str, experiment: str | None, model_prefix: str) -> str:
    """``experiment NAME (prefix)`` for an experiment, else ``run ID (prefix)``."""
    return f"{label_head(run_id, experiment)} ({model_prefix})"
