"""Load DRfC runs (``run.env`` files, experiments, the activated shell) into :class:`RunConfig` objects.

**Which runs.** Each run file is one run. So is each ``--experiment NAME``, which means
``experiments/NAME/run.env`` under ``$DR_DIR`` (else the current directory). ``all_experiments_dir``
adds every ``experiments/*/run.env`` under that directory, or directly under it when it is the
``experiments`` directory itself. With none of these, the run is the activated DRfC shell: the file
in ``$DR_CONFIG``, re-read like every ``dr-*`` command re-reads it, or, without ``DR_CONFIG``, the
exported ``DR_*`` variables alone.

**Which system.env.** In order:

1. ``system_env`` when given;
2. ``$DR_DIR/system.env`` when it exists;
3. ``system.env`` beside the run file;
4. for ``experiments/NAME/run.env``, the ``system.env`` two directories up (the DRfC root).

No system.env is an error, as it is for DRfC.

**Layers, lowest first.**

1. What DRfC's activation sets before reading the files: ``DR_DIR`` (the system.env's directory
   unless exported), ``DR_CONFIG`` (the run file) and ``DR_EXPERIMENT_NAME`` for experiments.
2. The system file.
3. The run file. ``$VAR`` in both files is expanded as DRfC does while reading them, see
   :mod:`drtransfer.envfile`.
4. The process environment: exported ``DR_*`` variables.
5. With ``increment`` (``-1``): ``DR_UPLOAD_S3_PREFIX`` incremented from the run file's own line (see
   :func:`plan_increment`), as DRfC's ``increment.sh`` exports the new value before uploading. The run
   uploads into that prefix; :func:`apply_increment` writes it into the run file afterwards.
6. ``overrides`` (command-line flags). A ``DR_LOCAL_S3_MODEL_PREFIX`` among them (``-p``) sets
   ``RunConfig.prefix_override``; ``reward_function`` (``--reward-function``) is carried as given.

Layers 4 to 6 replace values. They do not re-expand the files, so ``DR_UPLOAD_S3_PREFIX=
$DR_LOCAL_S3_MODEL_PREFIX-1`` keeps the model prefix the file had.

**The activated-shell trap.** In a shell where DRfC was activated, the environment holds the activated
run's values; they must not leak into other runs. With ``DR_CONFIG`` set, an exported ``DR_*``
variable therefore counts only when it differs from what activating ``$DR_CONFIG`` (with its
system.env) gives, that is, when the user set it by hand. In detail:

- variables that activation computes itself (docker, ports, ``DR_DIR``, ``DR_CONFIG``,
  ``DR_EXPERIMENT_NAME`` ...) never count;
- a variable equal to its activated value does not count;
- a variable the activated files define never counts, even when it differs. DRfC re-reads the files
  on every ``dr-*`` command, so an exported copy is either stale (the file was edited, or ``-1``
  incremented ``DR_UPLOAD_S3_PREFIX``, after activation) or would be overwritten by DRfC anyway. The
  file wins, and a log warning names the variable and how to refresh the shell (for
  ``DR_UPLOAD_S3_PREFIX`` also that ``--upload-prefix`` uploads to the exported value); a variable
  that a flag or ``-1`` decides gets no warning;
- anything else counts: variables the files do not set, and derived ones set by hand
  (``DR_LOCAL_S3_ENDPOINT_URL``, ``DR_LOCAL_ACCESS_KEY_ID`` ...) that differ from what activation
  derives.

Without ``DR_CONFIG``, every exported ``DR_*`` variable counts.

**Derived like DRfC.**

- Local endpoint: ``DR_LOCAL_S3_ENDPOINT_URL`` when set. Else ``DR_CLOUD`` decides:
  ``local``/``azure`` give ``http://localhost:9000``, ``remote`` gives ``DR_REMOTE_MINIO_URL``, and
  ``aws`` gives AWS itself.
- Upload endpoint: ``DR_UPLOAD_S3_ENDPOINT_URL`` when set (for S3-compatible targets), else AWS.
- Region: ``DR_AWS_APP_REGION`` (``us-east-1``).
- Profiles: ``DR_LOCAL_S3_PROFILE`` (``minio``, or ``default`` for ``DR_CLOUD=aws``) and
  ``DR_UPLOAD_S3_PROFILE`` (``default``). ``DR_LOCAL_ACCESS_KEY_ID``/``DR_LOCAL_SECRET_ACCESS_KEY`` win
  over the local profile. Credentials are resolved once per distinct profile.
- Template defaults apply when a variable is unset or empty: ``DR_RUN_ID`` 0, ``DR_LOCAL_S3_BUCKET``
  bucket, ``DR_LOCAL_S3_MODEL_PREFIX`` rl-deepracer-sagemaker, ``DR_LOCAL_S3_CUSTOM_FILES_PREFIX``
  custom_files, ``DR_LOCAL_S3_REWARD_KEY`` ``<custom files>/reward_function.py``,
  ``DR_LOCAL_S3_METRICS_PREFIX`` ``<model prefix>/metrics``.
- Prefixes lose leading and trailing ``/``.
- ``DR_UPLOAD_S3_BUCKET`` and ``DR_UPLOAD_S3_PREFIX`` have no default. Empty, ``not-defined`` or
  ``to-be-defined`` is an error, unless ``local_target`` (``-L``) makes the local bucket the target,
  or ``require_target=False`` (inspection only) leaves ``upload`` as None.

**Checks** (each a ConfigError naming the files involved):

- ``DR_CLOUD`` missing or unknown without an explicit endpoint, or an endpoint that is not an http(s)
  URL;
- a target equal to its own source ("Target equals source");
- two runs with the same ``(bucket, model prefix)`` or the same target;
- a run whose target is another run's training prefix.

Runs may share a ``DR_RUN_ID`` (DRfC's template sets 0, and copied experiments keep it). Each run gets a
``key`` and a ``label`` unique among the loaded runs (see :func:`_name_runs_apart`); a run file
``experiments/NAME/run.env`` belongs to experiment NAME. The same file given twice counts as one run.

**Warnings** (``RunConfig.warnings``, never printed here): each assignment in system.env or the run file
of a ``DR_*`` name that neither DRfC nor deepracer-transfer reads (:mod:`drtransfer.drfc_variables`), with
the nearest known name. ``RunConfig.source_default`` says that ``DR_LOCAL_S3_MODEL_PREFIX`` fell back to
DRfC's default.

``RunConfig.values`` is the merged mapping after defaults, without the local secret keys.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from drtransfer.drfc_variables import KNOWN_VARIABLES, nearest_variable
from drtransfer.endpoints import Credentials, Endpoint, resolve_credentials
from drtransfer.envfile import EnvFile, parse_env_text, read_env_file, read_text
from drtransfer.errors import ConfigError
from drtransfer.runconfig import PrefixIncrement, RunConfig, base_label, label_head

NODE_VARIABLE = "DRTRANSFER_NODE"  # where a run's source is reachable on a cluster (docs/scale-out.md)

log = logging.getLogger(__name__)

LOCALHOST_MINIO = "http://localhost:9000"
PLACEHOLDERS = frozenset({"", "not-defined", "to-be-defined"})
CLOUDS = ("local", "azure", "remote", "aws")
SECRET_VARIABLES = frozenset({"DR_LOCAL_ACCESS_KEY_ID", "DR_LOCAL_SECRET_ACCESS_KEY"})

# Variables that bin/activate.sh computes itself (not read from the files): an exported copy describes
# the activated run only.
ACTIVATION_ONLY = frozenset(
    {
        "DR_DIR",
        "DR_CONFIG",
        "DR_EXPERIMENT_NAME",
        "DR_MINIO_URL",
        "DR_LOCAL_PROFILE_ENDPOINT_URL",
        "DR_UPLOAD_PROFILE",
        "DR_LOCAL_S3_AUTH_MODE",
        "DR_ROBOMAKER_TRAIN_PORT",
        "DR_ROBOMAKER_EVAL_PORT",
        "DR_ROBOMAKER_GUI_PORT",
        "DR_DOCKER_FILE_SEP",
        "DR_DOCKER_MAJOR_VERSION",
        "DR_TRAIN_COMPOSE_FILE",
        "DR_EVAL_COMPOSE_FILE",
    }
)


@dataclass(frozen=True)
class _Source:
    """Where one run's settings come from."""

    run_file: Path | None
    system_file: Path | None
    experiment: str | None = None

    def describe(self) -> str:
        return str(self.run_file) if self.run_file else "the activated DRfC environment"


@dataclass(frozen=True)
class _Choices:
    """What the command line decided for every run, beside the variable overrides."""

    local_target: bool
    require_target: bool
    prefix_override: bool
    reward_function: str | None


@dataclass
class _Activation:
    """What activating ``$DR_CONFIG`` gives: file-defined values plus what activate.sh derives."""

    file_values: dict[str, str]
    derived: dict[str, str]
    source: Path


@dataclass
class _CredentialCache:
    environ: Mapping[str, str] | None  # None: the process environment, exactly as boto3 reads it
    found: dict[tuple[str, str | None, str | None, str | None], Credentials | None] = field(default_factory=dict)

    def get(
        self, name: str, profile: str | None, access_key: str | None = None, secret_key: str | None = None
    ) -> Credentials | None:
        key = (name, profile, access_key, secret_key)
        if key not in self.found:
            self.found[key] = resolve_credentials(
                name,
                profile=profile,
                access_key=access_key,
                secret_key=secret_key,
                environ=self.environ,
                profile_variable=f"DR_{name.upper()}_S3_PROFILE",
            )
        return self.found[key]


def load_runs(
    run_files: Sequence[Path] = (),
    *,
    system_env: Path | None = None,
    experiments: Sequence[str] = (),
    all_experiments_dir: Path | None = None,
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    local_target: bool = False,
    require_target: bool = True,
    increment: bool = False,
    reward_function: str | None = None,
) -> list[RunConfig]:
    """One :class:`RunConfig` per run (see the module docstring for every rule); [] when there is nothing
    to load (no files, no experiments, no DRfC variables in the environment). With ``increment`` every
    run targets its incremented ``DR_UPLOAD_S3_PREFIX`` and carries the pending edit in
    ``RunConfig.increment``; nothing is written here."""
    env = dict(os.environ if environ is None else environ)
    flags = dict(overrides or {})
    credentials = _CredentialCache(None if environ is None else env)
    choices = _Choices(local_target, require_target, "DR_LOCAL_S3_MODEL_PREFIX" in flags, reward_function)
    sources = _sources(run_files, system_env, experiments, all_experiments_dir, env)
    activation = _activation(env, credentials)
    # A flag, or -1 (which increments the file's line), decides these whatever the shell exports.
    decided = [*flags, "DR_UPLOAD_S3_PREFIX"] if increment else list(flags)
    env_layer = _environment_layer(env, activation, overridden=decided)

    if not sources:
        if activation is not None:
            system_file = _system_file_for(activation.source, system_env, env)
            sources = [_Source(activation.source, system_file, env.get("DR_EXPERIMENT_NAME") or None)]
        elif env_layer:
            if increment:
                raise ConfigError(
                    "-1 needs a run file to edit, and only exported DR_* variables describe this run; give its "
                    "run.env, or activate DRfC with it (DR_CONFIG)."
                )
            values = {**env_layer, **flags}
            return [_build_run(values, _Source(None, None), credentials, choices, flags)]
        else:
            return []

    runs = []
    for source in sources:
        file_values, files = _read_files(source, env)
        values = {**file_values, **env_layer}
        pending = _increment_for(source, env) if increment else None
        if pending is not None:
            values["DR_UPLOAD_S3_PREFIX"] = pending.new_value
        values.update(flags)
        runs.append(_build_run(values, source, credentials, choices, flags, pending, _unknown_variables(files)))
    _check_distinct(runs)
    return _name_endpoints_apart(_name_runs_apart(runs))


def _name_runs_apart(runs: Sequence[RunConfig]) -> list[RunConfig]:
    """Give every run a key and a label unique among ``runs``.

    The key is the first of these that no other run shares: the run id, the experiment name, the run
    file's name; else the run's position (``#2``). The label is :func:`~drtransfer.runconfig.base_label`;
    runs whose labels collide show their source URL instead of the prefix (no two runs share a source),
    and the position is added when even that collides.
    """

    def unique(values: Sequence[str | None]) -> list[bool]:
        return [value is not None and values.count(value) == 1 for value in values]

    candidates: list[list[str | None]] = [
        [run.run_id for run in runs],
        [run.experiment for run in runs],
        [run.run_file.name if run.run_file else None for run in runs],
    ]
    free = [unique(level) for level in candidates]
    labels = [base_label(run.run_id, run.experiment, run.model_prefix) for run in runs]
    labels = [
        f"{label_head(run.run_id, run.experiment)} ({run.source_url})" if labels.count(label) > 1 else label
        for label, run in zip(labels, runs, strict=True)
    ]
    out = []
    for index, run in enumerate(runs):
        key = next((level[index] for level, ok in zip(candidates, free, strict=True) if ok[index]), None)
        label = labels[index] if labels.count(labels[index]) == 1 else f"{labels[index]} #{index + 1}"
        out.append(dataclasses.replace(run, key=key or f"#{index + 1}", label=label))
    return out


def _name_endpoints_apart(runs: Sequence[RunConfig]) -> list[RunConfig]:
    """Endpoints that differ between runs get different names, so one name-to-endpoint mapping serves
    every plan of a command (the engine looks endpoints up by name)."""
    seen: dict[str, Endpoint] = {}
    out = []
    for index, run in enumerate(runs, start=1):
        changes: dict[str, Endpoint] = {}
        for attr in ("local", "upload"):
            endpoint: Endpoint | None = getattr(run, attr)
            if endpoint is None:
                continue
            name = endpoint.name
            if name in seen and seen[name] != endpoint:
                name = f"{endpoint.name}-{index}"  # run ids need not be unique, positions are
                changes[attr] = dataclasses.replace(endpoint, name=name)
            seen[name] = changes.get(attr, endpoint)
        out.append(dataclasses.replace(run, **changes) if changes else run)  # type: ignore[arg-type]
    return out


# ---- which runs -------------------------------------------------------------------------------------


def _sources(
    run_files: Iterable[Path],
    system_env: Path | None,
    experiments: Iterable[str],
    all_experiments_dir: Path | None,
    env: Mapping[str, str],
) -> list[_Source]:
    if system_env is not None and not system_env.is_file():
        raise ConfigError(f"The system file {system_env} does not exist; check the --system-env path.")
    found: list[_Source] = []
    for run_file in run_files:
        if not run_file.exists():
            raise ConfigError(f"The run file {run_file} does not exist; check the path.")
        found.append(_Source(run_file, _system_file_for(run_file, system_env, env)))
    for name in experiments:
        run_file = _experiment_file(name, env)
        found.append(_Source(run_file, _system_file_for(run_file, system_env, env), experiment=name))
    if all_experiments_dir is not None:
        for name, run_file in _all_experiments(all_experiments_dir):
            found.append(_Source(run_file, _system_file_for(run_file, system_env, env), experiment=name))
    unique: dict[Path, _Source] = {}
    for source in found:  # the same file given twice is one run
        assert source.run_file is not None
        unique.setdefault(source.run_file.resolve(), source)
    return list(unique.values())


def _drfc_root(env: Mapping[str, str]) -> Path:
    return Path(env["DR_DIR"]) if env.get("DR_DIR") else Path.cwd()


def _experiment_file(name: str, env: Mapping[str, str]) -> Path:
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ConfigError(f"{name!r} is not an experiment name; give the name of a directory under experiments/.")
    directory = _drfc_root(env) / "experiments" / name
    if not directory.is_dir():
        raise ConfigError(
            f"Experiment directory {directory} does not exist; check the name, or set DR_DIR to the DRfC directory."
        )
    run_file = directory / "run.env"
    if not run_file.is_file():
        raise ConfigError(f"Experiment {name!r} has no run.env ({run_file}); copy one into {directory}.")
    return run_file


def _all_experiments(directory: Path) -> list[tuple[str, Path]]:
    base = directory / "experiments" if (directory / "experiments").is_dir() else directory
    if not base.is_dir():
        raise ConfigError(f"{directory} is not a directory; give the DRfC directory or its experiments/ directory.")
    found = sorted((child.name, child / "run.env") for child in base.iterdir() if (child / "run.env").is_file())
    if not found:
        raise ConfigError(f"No experiments/*/run.env under {directory}; create one or give run files instead.")
    return found


def _system_file_for(run_file: Path, system_env: Path | None, env: Mapping[str, str]) -> Path:
    if system_env is not None:
        return system_env
    candidates = []
    if env.get("DR_DIR"):
        candidates.append(Path(env["DR_DIR"]) / "system.env")
    candidates.append(run_file.parent / "system.env")
    if run_file.parent.parent.name == "experiments":
        candidates.append(run_file.parent.parent.parent / "system.env")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise ConfigError(f"No system.env found for {run_file} (looked at {looked}); pass --system-env or set DR_DIR.")


# ---- layers -----------------------------------------------------------------------------------------


def _seeds(source: _Source, env: Mapping[str, str]) -> dict[str, str]:
    """What DRfC's activation defines before it reads the files: ``DR_DIR``, ``DR_CONFIG`` and, for an
    experiment, ``DR_EXPERIMENT_NAME``."""
    assert source.run_file is not None and source.system_file is not None
    values = {
        "DR_DIR": env.get("DR_DIR") or str(source.system_file.resolve().parent),
        "DR_CONFIG": str(source.run_file.resolve()),
    }
    if source.experiment:
        values["DR_EXPERIMENT_NAME"] = source.experiment
    return values


def _read_files(source: _Source, env: Mapping[str, str]) -> tuple[dict[str, str], list[EnvFile]]:
    """Activation seeds, then system.env, then the run file, each expanded against what came before."""
    assert source.run_file is not None and source.system_file is not None
    values = _seeds(source, env)
    files = []
    for path in (source.system_file, source.run_file):
        parsed = read_env_file(path, values, env)
        values.update(parsed.values())
        files.append(parsed)
    return values, files


def _unknown_variables(files: Iterable[EnvFile]) -> tuple[str, ...]:
    """One warning per assignment of a ``DR_*`` name that neither DRfC nor deepracer-transfer reads."""
    warnings = []
    for parsed in files:
        for assignment in parsed.assignments:
            name = assignment.key
            if not name.startswith("DR_") or name in KNOWN_VARIABLES:
                continue
            nearest = nearest_variable(name)
            hint = f"did you mean {nearest}?" if nearest else "check its spelling."
            warnings.append(f"{parsed.path} line {assignment.line}: {name} is not a DRfC variable; {hint}")
    return tuple(warnings)


def _experiment_name(source: _Source) -> str | None:
    """The experiment a run belongs to: the one named (``--experiment``, ``DR_EXPERIMENT_NAME``), else the
    directory of an ``experiments/NAME/run.env`` file."""
    if source.experiment:
        return source.experiment
    run_file = source.run_file
    if run_file is not None and run_file.name == "run.env" and run_file.parent.parent.name == "experiments":
        return run_file.parent.name
    return None


def _activation(env: Mapping[str, str], credentials: _CredentialCache) -> _Activation | None:
    """What ``source bin/activate.sh`` gave this shell, recomputed from ``$DR_CONFIG`` (None if not activated)."""
    if not env.get("DR_CONFIG"):
        return None
    run_file = Path(env["DR_CONFIG"])
    if not run_file.is_file():
        raise ConfigError(f"DR_CONFIG names {run_file}, which does not exist; activate DRfC again or unset DR_CONFIG.")
    source = _Source(run_file, _system_file_for(run_file, None, env))
    values, files = _read_files(source, env)
    file_values = {key: value for parsed in files for key, value in parsed.values().items()}
    derived = {"DR_RUN_ID": values.get("DR_RUN_ID") or "0"}
    url = _activation_endpoint(values)
    if url is not None:
        derived["DR_LOCAL_S3_ENDPOINT_URL"] = url
    if env.get("DR_LOCAL_ACCESS_KEY_ID"):  # activate.sh exports the activated profile's keys
        try:
            keys = credentials.get("local", _local_profile(values))
        except ConfigError:
            keys = None
        if keys is not None:
            derived["DR_LOCAL_ACCESS_KEY_ID"] = keys.access_key
            derived["DR_LOCAL_SECRET_ACCESS_KEY"] = keys.secret_key
    return _Activation(file_values, derived, run_file)


def _activation_endpoint(values: Mapping[str, str]) -> str | None:
    """DR_LOCAL_S3_ENDPOINT_URL as activate.sh exports it (it overwrites the file's value for these clouds)."""
    cloud = values.get("DR_CLOUD", "").lower()
    if cloud in ("local", "azure"):
        return LOCALHOST_MINIO
    if cloud == "remote":
        return values.get("DR_REMOTE_MINIO_URL", "")
    return values.get("DR_LOCAL_S3_ENDPOINT_URL")


def _environment_layer(
    env: Mapping[str, str], activation: _Activation | None, overridden: Iterable[str] = ()
) -> dict[str, str]:
    """The exported DR_* variables that count as overrides (see "the activated-shell trap"); a stale
    export of a variable in ``overridden`` (decided by a command-line flag or by ``-1``) is not warned
    about."""
    flagged = set(overridden)
    layer: dict[str, str] = {}
    for key, value in env.items():
        if not key.startswith("DR_"):
            continue
        if activation is None:
            layer[key] = value
            continue
        if key in ACTIVATION_ONLY or activation.derived.get(key) == value:
            continue
        if key in activation.file_values:
            if activation.file_values[key] != value and key not in SECRET_VARIABLES and key not in flagged:
                log.warning("%s", _stale_export(key, value, activation))
            continue
        layer[key] = value
    return layer


def _stale_export(key: str, value: str, activation: _Activation) -> str:
    """The warning for an exported variable that differs from the activated file, which wins."""
    refresh = "run dr-update-env to refresh this shell"
    if key == "DR_UPLOAD_S3_PREFIX":  # -1 rewrites it in the file; the shell keeps the old value
        current = activation.file_values[key]
        return (
            f"{key} is exported as {value}, but {activation.source} (DR_CONFIG) sets {current}; using {current}, "
            f"as DRfC does; {refresh}, or pass --upload-prefix {value} to upload there."
        )
    return (
        f"{key} is exported with a value that differs from {activation.source} (activated as DR_CONFIG); using "
        f"the file, as DRfC does; {refresh}, or change {key} in the file."
    )


# ---- building a run ---------------------------------------------------------------------------------


def _local_profile(values: Mapping[str, str]) -> str:
    default = "default" if values.get("DR_CLOUD", "").lower() == "aws" else "minio"
    return values.get("DR_LOCAL_S3_PROFILE") or default


def _prefix(value: str) -> str:
    return value.strip("/")


def _apply_defaults(values: dict[str, str]) -> None:
    def default(key: str, value: str) -> str:
        if not values.get(key):
            values[key] = value
        return values[key]

    default("DR_RUN_ID", "0")
    default("DR_LOCAL_S3_BUCKET", "bucket")
    model_prefix = default("DR_LOCAL_S3_MODEL_PREFIX", "rl-deepracer-sagemaker")
    custom_files = default("DR_LOCAL_S3_CUSTOM_FILES_PREFIX", "custom_files")
    default("DR_LOCAL_S3_REWARD_KEY", f"{_prefix(custom_files)}/reward_function.py")
    default("DR_LOCAL_S3_METRICS_PREFIX", f"{_prefix(model_prefix)}/metrics")
    default("DR_AWS_APP_REGION", "us-east-1")
    default("DR_LOCAL_S3_PROFILE", _local_profile(values))
    default("DR_UPLOAD_S3_PROFILE", "default")


def _check_url(url: str, variable: str, where: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{variable}={url!r} for {where} is not an http(s) URL; write e.g. http://host:9000.")
    return url


def _local_url(values: Mapping[str, str], where: str) -> str | None:
    if values.get("DR_LOCAL_S3_ENDPOINT_URL"):
        return _check_url(values["DR_LOCAL_S3_ENDPOINT_URL"], "DR_LOCAL_S3_ENDPOINT_URL", where)
    cloud = values.get("DR_CLOUD", "")
    if cloud.lower() in ("local", "azure"):
        return LOCALHOST_MINIO
    if cloud.lower() == "remote":
        if not values.get("DR_REMOTE_MINIO_URL"):
            raise ConfigError(f"DR_CLOUD=remote needs DR_REMOTE_MINIO_URL for {where}; set it in system.env.")
        return _check_url(values["DR_REMOTE_MINIO_URL"], "DR_REMOTE_MINIO_URL", where)
    if cloud.lower() == "aws":
        return None
    if not cloud:
        raise ConfigError(
            f"DR_CLOUD is not set for {where}; set it in system.env (local, azure, remote or aws) "
            f"or set DR_LOCAL_S3_ENDPOINT_URL."
        )
    raise ConfigError(f"DR_CLOUD={cloud!r} for {where} is not one of {', '.join(CLOUDS)}; fix it in system.env.")


def _local_endpoint(values: dict[str, str], where: str, credentials: _CredentialCache) -> Endpoint:
    variable = "DR_LOCAL_S3_ENDPOINT_URL" if values.get("DR_LOCAL_S3_ENDPOINT_URL") else None
    if variable is None and values.get("DR_CLOUD", "").lower() == "remote":
        variable = "DR_REMOTE_MINIO_URL"
    url = _local_url(values, where)
    if url is not None:
        values["DR_LOCAL_S3_ENDPOINT_URL"] = url
    profile = values["DR_LOCAL_S3_PROFILE"]
    keys = credentials.get(
        "local", profile, values.get("DR_LOCAL_ACCESS_KEY_ID"), values.get("DR_LOCAL_SECRET_ACCESS_KEY")
    )
    return Endpoint("local", url, values["DR_AWS_APP_REGION"], keys, profile=profile, url_variable=variable)


def _target(
    values: Mapping[str, str],
    where: str,
    local: Endpoint,
    credentials: _CredentialCache,
    local_target: bool,
    require_target: bool,
) -> tuple[Endpoint | None, str, str]:
    """(endpoint, bucket, prefix) of the upload target; the endpoint is None when there is no bucket and
    none is required."""
    upload: Endpoint | None
    bucket = values.get("DR_UPLOAD_S3_BUCKET", "")
    prefix = _prefix(values.get("DR_UPLOAD_S3_PREFIX", ""))
    if local_target:
        upload, bucket = local, values["DR_LOCAL_S3_BUCKET"]
    elif bucket in PLACEHOLDERS:
        upload, bucket = None, ""
        if require_target:
            raise ConfigError(
                f"No upload bucket defined for {where}: set DR_UPLOAD_S3_BUCKET in system.env or the run file, "
                f"or use -L to upload into the local bucket."
            )
    else:
        url = values.get("DR_UPLOAD_S3_ENDPOINT_URL")
        if url:
            _check_url(url, "DR_UPLOAD_S3_ENDPOINT_URL", where)
        profile = values["DR_UPLOAD_S3_PROFILE"]
        keys = credentials.get("upload", profile)
        upload = Endpoint(
            "upload",
            url or None,
            values["DR_AWS_APP_REGION"],
            keys,
            profile=profile,
            url_variable="DR_UPLOAD_S3_ENDPOINT_URL" if url else None,
        )
    if prefix in PLACEHOLDERS:
        written, prefix = values.get("DR_UPLOAD_S3_PREFIX", ""), ""
        if require_target or local_target:
            if written and not _prefix(written):  # only slashes: the bucket root
                raise ConfigError(
                    f"DR_UPLOAD_S3_PREFIX={written} for {where} would upload into the root of bucket {bucket!r}, "
                    f"where -w and the commit objects would act on the whole bucket; give the model a prefix of "
                    f"its own, e.g. DR_UPLOAD_S3_PREFIX=my-model."
                )
            raise ConfigError(f"No upload prefix defined for {where}: set DR_UPLOAD_S3_PREFIX in the run file.")
    return upload, bucket, prefix


def _build_run(
    values: dict[str, str],
    source: _Source,
    credentials: _CredentialCache,
    choices: _Choices,
    flags: Mapping[str, str],
    increment: PrefixIncrement | None = None,
    warnings: tuple[str, ...] = (),
) -> RunConfig:
    source_default = not values.get("DR_LOCAL_S3_MODEL_PREFIX")
    _apply_defaults(values)
    run_id = values["DR_RUN_ID"]
    where = f"run {run_id} ({source.describe()})"
    region = values["DR_AWS_APP_REGION"]
    model_prefix = _prefix(values["DR_LOCAL_S3_MODEL_PREFIX"])
    local = _local_endpoint(values, where, credentials)
    upload, upload_bucket, upload_prefix = _target(
        values, where, local, credentials, choices.local_target, choices.require_target
    )
    if upload is not None and (upload.url, upload_bucket, upload_prefix) == (
        local.url,
        values["DR_LOCAL_S3_BUCKET"],
        model_prefix,
    ):
        raise ConfigError(
            _target_is_source(where, upload_bucket, upload_prefix, flags, increment, choices.local_target)
        )

    return RunConfig(
        run_id=run_id,
        local=local,
        local_bucket=values["DR_LOCAL_S3_BUCKET"],
        model_prefix=model_prefix,
        upload=upload,
        upload_bucket=upload_bucket,
        upload_prefix=upload_prefix,
        reward_key=values["DR_LOCAL_S3_REWARD_KEY"].lstrip("/"),
        metrics_prefix=_prefix(values["DR_LOCAL_S3_METRICS_PREFIX"]),
        region=region,
        run_file=source.run_file,
        system_file=source.system_file,
        values={key: value for key, value in values.items() if key not in SECRET_VARIABLES},
        increment=increment,
        prefix_override=choices.prefix_override,
        reward_function=choices.reward_function,
        experiment=_experiment_name(source),
        warnings=warnings,
        source_default=source_default,
        node=values.get(NODE_VARIABLE, "").strip() or None,
    )


def _target_is_source(
    where: str,
    bucket: str,
    prefix: str,
    flags: Mapping[str, str],
    increment: PrefixIncrement | None,
    local_target: bool,
) -> str:
    """The sentence for a target equal to its source, naming what made the target prefix."""
    head = f"Target equals source for {where} (s3://{bucket}/{prefix})"
    flag_prefix = flags.get("DR_UPLOAD_S3_PREFIX")
    if flag_prefix is not None and flag_prefix == flags.get("DR_LOCAL_S3_MODEL_PREFIX"):  # -p PREFIX
        if local_target:
            why, fix = "-L uploads into the source bucket", "drop -p or -L"
        else:
            why, fix = "DR_UPLOAD_S3_BUCKET is the source bucket", "drop -p or upload to another bucket"
        return (
            f"{head}: -p {prefix} sets both the source and the target prefix, and {why}, so the model would be "
            f"uploaded onto itself; {fix}."
        )
    if flag_prefix is not None and "DR_LOCAL_S3_MODEL_PREFIX" not in flags:
        return f"{head}: --upload-prefix {prefix} is the source prefix; give another upload prefix."
    if increment is not None and flag_prefix is None:
        return (
            f"{head}: -1 makes DR_UPLOAD_S3_PREFIX {increment.new_value} ({increment.old_value} in "
            f"{increment.run_file}), which is the source prefix; change DR_UPLOAD_S3_PREFIX in {increment.run_file}."
        )
    return f"{head}; set a different DR_UPLOAD_S3_PREFIX."


def _check_distinct(runs: Sequence[RunConfig]) -> None:
    """Runs must not share a source model or a target prefix, and no run may upload into the prefix another
    run trains into (possible with -L, or with the target on the local store). They may share a
    DR_RUN_ID: DRfC's template gives every experiment 0, and a command that finds containers by it
    refuses such runs itself."""

    def name(run: RunConfig) -> str:
        return str(run.run_file) if run.run_file else "the activated DRfC environment"

    def where(endpoint: Endpoint, bucket: str, prefix: str) -> tuple[str, ...]:
        return (endpoint.url or f"aws:{endpoint.region}", bucket, prefix)

    seen: dict[tuple[str, ...], RunConfig] = {}
    sources = {where(run.local, run.local_bucket, run.model_prefix): run for run in runs}
    for run in runs:
        checks: list[tuple[tuple[str, ...], str]] = [
            (
                ("source", run.local_bucket, run.model_prefix),
                f"both train into s3://{run.local_bucket}/{run.model_prefix}; give each its own "
                f"DR_LOCAL_S3_MODEL_PREFIX",
            ),
        ]
        if run.upload is not None and run.upload_prefix:
            target = where(run.upload, run.upload_bucket, run.upload_prefix)
            checks.append(
                (
                    ("target", *target),
                    f"both upload to s3://{run.upload_bucket}/{run.upload_prefix}; give each its own "
                    f"DR_UPLOAD_S3_PREFIX",
                )
            )
            other = sources.get(target)
            if other is not None and other is not run:
                raise ConfigError(
                    f"{name(run)} uploads to s3://{run.upload_bucket}/{run.upload_prefix}, where {name(other)} "
                    f"trains; give it another DR_UPLOAD_S3_PREFIX."
                )
        for key, problem in checks:
            if key in seen:
                raise ConfigError(f"{name(seen[key])} and {name(run)} {problem}.")
        for key, _ in checks:
            seen[key] = run


# ---- -1 -------------------------------------------------------------------------------------------------


def increment_upload_prefix(
    run_file: Path, *, system_env: Path | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """Increment ``DR_UPLOAD_S3_PREFIX`` in ``run_file`` now and return the new prefix, expanded:
    :func:`plan_increment` then :func:`apply_increment`."""
    return apply_increment(plan_increment(run_file, system_env=system_env, environ=environ))


def plan_increment(
    run_file: Path, *, system_env: Path | None = None, environ: Mapping[str, str] | None = None
) -> PrefixIncrement:
    """``-1``: the incremented ``DR_UPLOAD_S3_PREFIX`` of ``run_file``, without writing anything.

    DRfC's rule (``scripts/upload/increment.sh``), with its numeric-suffix bug fixed: split the value
    on ``-``. When the last part is all digits, it is incremented, keeping its zero padding
    (``model-009`` gives ``model-010``). Otherwise ``-1`` is appended (``model`` gives ``model-1``,
    ``my-model-final`` gives ``my-model-final-1``). The value is taken as written: an expression such
    as ``$DR_LOCAL_S3_MODEL_PREFIX-1`` stays an expression (``$DR_LOCAL_S3_MODEL_PREFIX-2``), and
    ``"..."`` or ``'...'`` around the whole value are kept. Only the line that takes effect (the last
    ``DR_UPLOAD_S3_PREFIX=`` line) is incremented.

    Expansion sees the run's system.env, found as by :func:`load_runs`, when there is one.
    """
    env = dict(os.environ if environ is None else environ)
    known: dict[str, str] = {"DR_CONFIG": str(run_file.resolve())}
    try:
        system_file: Path | None = _system_file_for(run_file, system_env, env)
    except ConfigError:
        system_file = None
    if system_file is not None:
        known["DR_DIR"] = env.get("DR_DIR") or str(system_file.resolve().parent)
        known.update(read_env_file(system_file, known, env).values())
    return _plan_increment(run_file, known, env)


def _increment_for(source: _Source, env: Mapping[str, str]) -> PrefixIncrement:
    """:func:`plan_increment` for a run being loaded, with the same seeds as :func:`_read_files`."""
    assert source.run_file is not None and source.system_file is not None
    known = _seeds(source, env)
    known.update(read_env_file(source.system_file, known, env).values())
    return _plan_increment(source.run_file, known, env)


def _plan_increment(run_file: Path, known: Mapping[str, str], env: Mapping[str, str]) -> PrefixIncrement:
    target = run_file.resolve()  # rewrite the real file, not a symlink pointing at it
    text = read_text(target)
    current = parse_env_text(text, run_file, known, env).last("DR_UPLOAD_S3_PREFIX")
    if current is None:
        raise ConfigError(
            f"{run_file} has no DR_UPLOAD_S3_PREFIX line to increment; add one, e.g. DR_UPLOAD_S3_PREFIX=my-model-1."
        )
    new_raw = _incremented(current.raw, run_file, current.line)
    updated = parse_env_text(_replaced(text, current.line, current.start, current.raw, new_raw), run_file, known, env)
    assignment = updated.last("DR_UPLOAD_S3_PREFIX")
    assert assignment is not None
    return PrefixIncrement(
        run_file=target,
        line=current.line,
        start=current.start,
        old_raw=current.raw,
        new_raw=new_raw,
        old_value=_prefix(current.value),
        new_value=_prefix(assignment.value),
    )


def apply_increment(increment: PrefixIncrement) -> str:
    """Write ``increment`` into its run file and return the new prefix.

    Every other byte stays as it was. The new file replaces the old one atomically (temporary file and
    rename, same permissions). A file whose line no longer holds the old value (edited meanwhile) is
    left alone and reported.
    """
    path = increment.run_file
    text = read_text(path)
    lines = text.split("\n")
    index, start, old = increment.line - 1, increment.start, increment.old_raw
    if index >= len(lines) or lines[index][start : start + len(old)] != old:
        raise ConfigError(
            f"{path} line {increment.line} changed since the upload started (DR_UPLOAD_S3_PREFIX is no longer "
            f"{old}); it was left as it is: set DR_UPLOAD_S3_PREFIX={increment.new_raw} by hand if that is the "
            f"name you want next."
        )
    _replace_atomically(path, _replaced(text, increment.line, start, old, increment.new_raw).encode("utf-8"))
    return increment.new_value


def _replaced(text: str, line: int, start: int, old: str, new: str) -> str:
    lines = text.split("\n")
    current = lines[line - 1]
    lines[line - 1] = current[:start] + new + current[start + len(old) :]
    return "\n".join(lines)


def _incremented(raw: str, run_file: Path, line: int) -> str:
    quote = raw[0] if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"" and raw[0] not in raw[1:-1] else ""
    inner = raw[1:-1] if quote else raw
    if not inner:
        raise ConfigError(f"{run_file} line {line}: DR_UPLOAD_S3_PREFIX is empty; set a prefix before using -1.")
    head, dash, last = inner.rpartition("-")
    numeric = last.isascii() and last.isdigit()
    inner = f"{head}{dash}{int(last) + 1:0{len(last)}d}" if numeric else f"{inner}-1"
    return f"{quote}{inner}{quote}"


def _replace_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``: a full disk or a
    crash leaves the old file as it was and no temporary file behind."""
    temporary: str | None = None
    try:
        mode = path.stat().st_mode & 0o7777
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException as error:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise ConfigError(
                f"Cannot rewrite {path}: {error.strerror or error}; it was left unchanged, free space or fix "
                f"its permissions (or edit it by hand)."
            ) from None
        raise


# ---- backups and pretrained models (drtransfer backup / restore) ------------------------------------------

BACKUP_BASE = "backups"


@dataclass(frozen=True)
class BackupLocation:
    """Where a run's full backups go: ``s3://bucket/base/<model prefix>/`` on ``endpoint``."""

    endpoint: Endpoint
    bucket: str
    base: str

    def prefix_for(self, model_prefix: str) -> str:
        return f"{self.base}/{model_prefix.strip('/')}" if self.base else model_prefix.strip("/")

    def url(self, model_prefix: str) -> str:
        return f"s3://{self.bucket}/{self.prefix_for(model_prefix)}"


def backup_location(
    run: RunConfig, *, environ: Mapping[str, str] | None = None, bucket: str | None = None
) -> BackupLocation:
    """The run's backup location. Each ``DR_BACKUP_S3_*`` variable defaults to its upload counterpart:
    bucket ``DR_BACKUP_S3_BUCKET`` (``DR_UPLOAD_S3_BUCKET``), endpoint ``DR_BACKUP_S3_ENDPOINT_URL``
    (``DR_UPLOAD_S3_ENDPOINT_URL``; ``aws`` for AWS S3 itself), profile ``DR_BACKUP_S3_PROFILE``
    (``DR_UPLOAD_S3_PROFILE``); ``DR_BACKUP_S3_PREFIX`` (``backups``) is the base the model prefix goes
    under, so runs sharing a system.env never share a backup. ``bucket`` (a backup URL's) replaces the
    variables' bucket."""
    values = run.values
    where = f"{run.label} ({run.run_file or 'the activated DRfC environment'})"
    bucket = bucket or values.get("DR_BACKUP_S3_BUCKET") or values.get("DR_UPLOAD_S3_BUCKET", "")
    if bucket in PLACEHOLDERS:
        raise ConfigError(
            f"No backup bucket defined for {where}: set DR_BACKUP_S3_BUCKET (or DR_UPLOAD_S3_BUCKET) in system.env "
            f"or the run file."
        )
    url = values.get("DR_BACKUP_S3_ENDPOINT_URL") or values.get("DR_UPLOAD_S3_ENDPOINT_URL") or None
    variable = "DR_BACKUP_S3_ENDPOINT_URL" if values.get("DR_BACKUP_S3_ENDPOINT_URL") else "DR_UPLOAD_S3_ENDPOINT_URL"
    if url is not None and url.lower() == "aws":
        url = None
    if url is not None:
        _check_url(url, variable, where)
    profile = values.get("DR_BACKUP_S3_PROFILE") or values.get("DR_UPLOAD_S3_PROFILE") or "default"
    keys = resolve_credentials("backup", profile=profile, environ=environ, profile_variable="DR_BACKUP_S3_PROFILE")
    endpoint = Endpoint("backup", url, run.region, keys, profile=profile, url_variable=variable if url else None)
    base = _prefix(values.get("DR_BACKUP_S3_PREFIX") or BACKUP_BASE)
    return BackupLocation(endpoint, bucket, base)


def set_run_variables(run_file: Path, assignments: Mapping[str, str]) -> None:
    """Set ``NAME=value`` for each of ``assignments`` in ``run_file`` at once, atomically (as ``-1``
    writes): the line that takes effect (the last one) gets the new value, a name the file lacks gets a
    line at the end; every other byte stays as it was."""
    target = run_file.resolve()
    if not target.is_file():
        raise ConfigError(f"The run file {run_file} does not exist; check the path.")
    text = read_text(target)
    parsed = parse_env_text(text, run_file, {}, {})
    appended = []
    # Replace from the bottom up, so earlier lines keep their positions.
    found = []
    for name, value in assignments.items():
        current = parsed.last(name)
        if current is None:
            appended.append(f"{name}={value}")
        else:
            found.append((current.line, current.start, current.raw, value))
    for line, start, raw, value in sorted(found, reverse=True):
        text = _replaced(text, line, start, raw, value)
    if appended:
        text = text + ("" if text.endswith("\n") or not text else "\n") + "\n".join(appended) + "\n"
    _replace_atomically(target, text.encode("utf-8"))
