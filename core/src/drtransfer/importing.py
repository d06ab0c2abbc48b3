"""Importing uploaded models into a DeepRacer service: the importer protocol and its two entry points.

Import targets are plugins (``drtransfer_register_importers``); the built-ins are ``aws-console``
(the legacy AWS DeepRacer console) and ``droa`` (DeepRacer on AWS). The upload command calls, in order::

    imports = prepare_imports(host, prepared_models, target=None, name=None, options=ImportOptions(...))
    outcomes = execute(...)                      # the upload itself
    results = submit_imports(imports, {run.key: model_result, ...}, wait=False, notify=notify)

:func:`prepare_imports` checks everything that can be checked before anything is written: the import
name of every run (``^[A-Za-z0-9-]{1,64}$``, refused with the offending character named), the target's
own settings (role ARN, sign-in, duplicate names, the service's model checks). A failure there is a
:class:`~drtransfer.errors.ConfigError` and nothing is copied. :func:`submit_imports` runs after the
upload; it never raises for one model: each run gets an :class:`ImportResult`, so a failed import
never hides a successful upload.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from drtransfer.engine import EngineSettings, TransferSubscriber
from drtransfer.errors import ConfigError, DrTransferError, Interrupted
from drtransfer.events import Event, ImportFinished
from drtransfer.operations import ModelResult
from drtransfer.plugins import PluginHost
from drtransfer.registry import Registry
from drtransfer.runconfig import RunConfig
from drtransfer.workflow import PreparedModel

NAME_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,64}$")
NAME_RULE = "1 to 64 letters, digits and hyphens"

SecretSource = Callable[[str], str]
"""Returns a secret for a prompt text (a hidden terminal prompt, or one line of stdin); never echoes it."""

Notify = Callable[[Event], None]


@dataclass(frozen=True)
class ImportOptions:
    """How to import, beyond target and name.

    ``secret`` supplies passwords (``None``: no way to ask, a sign-in that needs one fails clearly).
    ``uploading`` is False for ``drtransfer import``, where the model was uploaded by an earlier command.
    ``engine`` / ``subscribers`` drive any transfer an importer does itself (DRoA copies the model into
    its own upload bucket). ``poll_interval`` / ``wait_timeout`` bound ``--wait``. ``warn`` receives one
    line per thing an importer accepts but the service would record differently from the model.
    """

    description: str | None = None
    secret: SecretSource | None = field(default=None, repr=False)
    uploading: bool = True
    dry_run: bool = False
    engine: EngineSettings = field(default_factory=EngineSettings)
    subscribers: Sequence[TransferSubscriber] = ()
    poll_interval: float = 10.0
    wait_timeout: float = 1800.0
    environ: Mapping[str, str] | None = field(default=None, repr=False)  # tests; default os.environ
    warn: Callable[[str], None] | None = field(default=None, repr=False)

    def env(self, run: RunConfig, name: str) -> str:
        """A setting as DRfC sees it for ``run``: the run's values, then the process environment."""
        value = run.values.get(name)
        if value is None:
            value = (os.environ if self.environ is None else self.environ).get(name, "")
        return value.strip()


@dataclass
class PreparedImport:
    """One run's import, checked and ready to submit after its upload.

    ``state`` belongs to the importer (a signed-in session, the DRoA site ...); it never holds a
    password and is never printed.
    """

    target: str
    name: str
    model: PreparedModel = field(repr=False)
    importer: Importer = field(repr=False)
    options: ImportOptions = field(repr=False)
    state: Any = field(default=None, repr=False)

    @property
    def run(self) -> RunConfig:
        return self.model.run


ImportStatus = Literal["submitted", "ready", "pending", "failed", "skipped"]


@dataclass
class ImportResult:
    """The outcome of one run's import.

    ``submitted``: the service accepted it (no ``--wait``); ``ready``: ``--wait`` saw it READY;
    ``pending``: ``--wait`` gave up while the service was still importing; ``failed``: refused or
    ended in an error status (``message`` says why, in one sentence); ``skipped``: not attempted
    because the model's upload failed.

    ``run_id`` is the run's ``DR_RUN_ID`` (runs may share it); ``key`` is its ``RunConfig.key``, which
    :func:`submit_imports` sets on every result it returns.
    """

    run_id: str
    target: str
    model_name: str
    status: ImportStatus
    model_id: str | None = None
    service_status: str | None = None
    source: str | None = None
    message: str | None = None
    key: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("submitted", "ready")

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "key": self.key,
            "target": self.target,
            "model_name": self.model_name,
            "status": self.status,
            "model_id": self.model_id,
            "service_status": self.service_status,
            "source": self.source,
            "message": self.message,
        }

    def summary(self) -> str:
        """One human line."""
        head = f"import of {self.model_name!r} into {self.target}"
        ident = f" (id {self.model_id})" if self.model_id else ""
        if self.status == "submitted":
            return f"{head} submitted{ident}"
        if self.status == "ready":
            return f"{head} is READY{ident}"
        if self.status == "pending":
            return f"{head} still {self.service_status or 'importing'}{ident}: {self.message}"
        return f"{head} {self.status.upper()}{ident}: {self.message}"


class Importer(Protocol):
    """What an import target implements (register it with ``drtransfer_register_importers``).

    ``prepare`` and ``submit`` get every item for this target at once, so a target can share one
    sign-in or one listing between runs. Neither may print a secret.

    ``needs_local_model``: the importer copies the chosen checkpoint from the local bucket itself (so
    ``drtransfer import`` inspects and selects it first); False: it imports what an upload put in the
    upload bucket. ``default_priority`` says whether the importer is the default target for a run (the
    highest number wins; None: not a default). An importer with cached sign-ins may also offer
    ``logout(options) -> list[str]`` (what it removed), which ``drtransfer logout`` calls, and a
    ``name_rule`` string: its service's own sentence for a name it refuses, quoted when
    :func:`check_name` refuses one.
    """

    needs_local_model: bool

    def default_priority(self, run: RunConfig, options: ImportOptions) -> int | None:
        """How strongly this importer wants to be ``run``'s default target; None: not at all."""
        ...

    def prepare(self, items: Sequence[PreparedImport], options: ImportOptions) -> None:
        """Check everything checkable before any upload and fill ``item.state``; raise ConfigError.

        Items whose ``model.inventory`` is ``None`` (the model itself cannot be uploaded) need only
        the checks that do not read the model.
        """

    def submit(
        self, items: Sequence[PreparedImport], options: ImportOptions, *, wait: bool, notify: Notify
    ) -> list[ImportResult]:
        """Import each item whose upload succeeded; one result per item, in order, never raising for one
        item (a whole-target failure such as an unreachable service is a failed result per item)."""
        ...


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid import name (naming the offending character), or ``None``."""
    if NAME_PATTERN.match(name):
        return None
    if not name:
        return "is empty"
    if len(name) > 64:
        return f"is {len(name)} characters long (at most 64)"
    bad = next(ch for ch in name if not (ch.isascii() and (ch.isalnum() or ch == "-")))
    shown = "a space" if bad == " " else repr(bad)
    return f"contains {shown}, which is not allowed"


def check_name(name: str, origin: str, rule: str | None = None) -> str:
    """``name`` if valid, else a ConfigError naming the offending character and where the name came from,
    with the target's own ``rule`` sentence when it has one."""
    problem = name_problem(name)
    if problem is not None:
        if rule:
            raise ConfigError(f"The import name {name!r} ({origin}) {problem}; {rule.rstrip('.')}. "
                              f"Choose one with -I NAME / --name NAME.")
        raise ConfigError(
            f"The import name {name!r} ({origin}) {problem}; import names are {NAME_RULE}: "
            f"choose one with -I NAME / --name NAME."
        )
    return name


def default_target(run: RunConfig, options: ImportOptions, host: PluginHost) -> str:
    """The installed importer with the highest :meth:`Importer.default_priority` for ``run``."""
    registry: Registry[Importer] = host.importers()
    if len(registry) == 0:
        raise _none_installed(f"for {run.label}")
    ranked = [
        (priority, registration.name)
        for registration in registry
        if (priority := registration.value.default_priority(run, options)) is not None
    ]
    if not ranked:
        names = ", ".join(registry.names()) or "none is installed"
        raise ConfigError(f"No import target is the default for {run.label}; choose one with --to ({names}).")
    return max(ranked, key=lambda pair: pair[0])[1]


def needs_local_model(host: PluginHost, target: str) -> bool:
    """Whether ``target``'s importer reads the model from the local bucket itself."""
    return bool(_importer(host, target).needs_local_model)


def _importer(host: PluginHost, target: str) -> Importer:
    registry = host.importers()
    if len(registry) == 0:
        raise _none_installed(f"into {target!r}")
    importer: Importer = registry.get(target)
    return importer


def _none_installed(what: str) -> ConfigError:
    return ConfigError(
        f"No importer is installed, so nothing can be imported ({what}); install drtransfer-plugins "
        f"or stop disabling its importers (--disable-plugin / DRTRANSFER_DISABLE_PLUGINS)."
    )


def prepare_imports(
    host: PluginHost,
    models: Sequence[PreparedModel],
    *,
    target: str | None,
    name: str | None,
    options: ImportOptions,
) -> list[PreparedImport]:
    """Resolve target and name of every run and let each target check what it can; raise ConfigError.

    ``target`` None: each run's default (:func:`default_target`). ``name`` None: each run's upload
    prefix; a ``name`` is allowed for one run only (two models cannot share a name).
    """
    if not models:
        return []
    if name is not None and len(models) > 1:
        raise ConfigError(
            f"The import name {name!r} was given for {len(models)} runs, but each model needs its own name; "
            f"leave -I/--name out to name each model after its upload prefix (DR_UPLOAD_S3_PREFIX)."
        )
    items: list[PreparedImport] = []
    seen: dict[tuple[str, str], str] = {}
    for model in models:
        run = model.run
        chosen = target or default_target(run, options, host)
        importer = _importer(host, chosen)
        rule: str | None = getattr(importer, "name_rule", None)
        if name is not None:
            model_name = check_name(name, "given with -I/--name", rule)
        else:
            model_name = check_name(run.upload_prefix.strip("/"), f"DR_UPLOAD_S3_PREFIX of {run.label}", rule)
        other = seen.get((chosen, model_name))
        if other is not None:
            raise ConfigError(
                f"{other} and {run.label} would both be imported into {chosen} as {model_name!r}; "
                f"give them different DR_UPLOAD_S3_PREFIX values."
            )
        seen[(chosen, model_name)] = run.label
        items.append(PreparedImport(chosen, model_name, model, importer, options))
    for group in _by_target(items).values():
        group[0].importer.prepare(group, options)
    return items


def submit_imports(
    prepared: Sequence[PreparedImport],
    uploads: Mapping[str, ModelResult] | None,
    *,
    wait: bool,
    notify: Notify | None = None,
) -> list[ImportResult]:
    """Import every prepared run whose upload succeeded; one result per item, in the order given.

    ``uploads`` maps run keys (``RunConfig.key``) to this command's upload results; ``None`` means there
    was no upload in this command (``drtransfer import``), so every item is submitted. Never raises for a
    model. Each result's ``key`` is its run's key.
    """
    results: dict[int, ImportResult] = {}
    ready: list[PreparedImport] = []
    for item in prepared:
        upload = None if uploads is None else uploads.get(item.run.key)
        if uploads is not None and (upload is None or upload.status != "ok"):
            why = "it was a dry run" if upload is not None and upload.status == "dry-run" else "its upload failed"
            results[id(item)] = ImportResult(item.run.run_id, item.target, item.name, "skipped",
                                             message=f"not imported because {why}.")
        else:
            ready.append(item)
    sink = notify or (lambda event: None)
    for chosen, group in _by_target(ready).items():
        try:
            produced = group[0].importer.submit(group, group[0].options, wait=wait, notify=sink)
        except Interrupted:
            raise
        except DrTransferError as error:  # a whole-target failure: every item of it failed
            produced = [ImportResult(i.run.run_id, chosen, i.name, "failed", message=str(error)) for i in group]
        for item, result in zip(group, produced, strict=True):
            results[id(item)] = result
    for item in prepared:
        results[id(item)].key = item.run.key
    return [results[id(item)] for item in prepared]


def wait_for_imports(
    results: Sequence[ImportResult],
    read_status: Callable[[ImportResult], tuple[str, str | None]],
    *,
    ready: frozenset[str],
    failed: frozenset[str],
    options: ImportOptions,
    notify: Notify,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """``--wait``: poll every submitted result until the service reports a status in ``ready`` or
    ``failed``, or ``options.wait_timeout`` runs out (those stay ``pending``). Updates ``results``.

    ``read_status`` returns the service's status and, for a failure, its message; it may raise a
    DrTransferError, which fails that one result.
    """
    pending = [r for r in results if r.status == "submitted"]
    deadline = time.monotonic() + options.wait_timeout
    while pending:
        waiting = []
        for result in pending:
            try:
                status, message = read_status(result)
            except DrTransferError as error:
                result.status = "failed"
                result.message = f"it was submitted as {result.model_id}, but its status could not be read: {error}"
                continue
            result.service_status = status
            if status in ready:
                result.status = "ready"
            elif status in failed:
                result.status = "failed"
                result.message = message or f"{result.target} reported {status}."
            else:
                waiting.append(result)
                continue
            notify(ImportFinished(run_id=result.run_id, target=result.target, model_name=result.model_name,
                                  model_id=result.model_id or "", status=status, message=result.message or ""))
        pending = waiting
        if pending and time.monotonic() + options.poll_interval > deadline:
            for result in pending:
                result.status = "pending"
                result.message = (f"gave up waiting after {options.wait_timeout:.0f} s; "
                                  f"the service may still finish the import.")
            break
        if pending:
            sleep(options.poll_interval)


def _by_target(items: Sequence[PreparedImport]) -> dict[str, list[PreparedImport]]:
    groups: dict[str, list[PreparedImport]] = {}
    for item in items:
        groups.setdefault(item.target, []).append(item)
    return groups


__all__ = [
    "NAME_PATTERN",
    "ImportOptions",
    "ImportResult",
    "Importer",
    "Notify",
    "PreparedImport",
    "SecretSource",
    "check_name",
    "default_target",
    "name_problem",
    "needs_local_model",
    "prepare_imports",
    "submit_imports",
    "wait_for_imports",
]
