"""The ``droa`` import target: DeepRacer on AWS.

Before any upload (:meth:`DroaImporter.prepare`): discovery from ``<DR_DROA_URL>/env.js``, DRoA's own
checks with its wording (name, description, car shell and colour, track and direction, object
avoidance and the values DRoA cannot store, SAC rules, the 1 GiB folder limit), warnings for what DRoA
would record differently from the model (``ImportOptions.warn``), the Cognito sign-in of
``DR_DROA_USERNAME`` (password from the prompt or ``--password-stdin``, or cached credentials) and one
signed API call.

After the upload (:meth:`DroaImporter.submit`): the model is copied from the local bucket straight into
``s3://<uploadBucketName>/uploads/models/<uuid>/`` through the transfer engine with the identity pool's
credentials, then ``POST /importmodel``; ``--wait`` polls ``GET /models/{id}`` until READY or ERROR.

``DR_DROA_COGNITO_ENDPOINT_URL`` and ``DR_DROA_S3_ENDPOINT_URL`` replace the Cognito and S3 service URLs
(the test suite points them at local servers); a real DRoA needs neither.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from drtransfer.endpoints import Endpoint
from drtransfer.engine import run_transfer
from drtransfer.errors import ConfigError, DrTransferError, Interrupted, ModelError
from drtransfer.events import ImportSubmitted
from drtransfer.importing import ImportOptions, ImportResult, Notify, PreparedImport, wait_for_imports
from drtransfer.operations import ModelResult
from drtransfer.runconfig import RunConfig
from drtransfer_plugins.droa import checks
from drtransfer_plugins.droa.api import DroaApi
from drtransfer_plugins.droa.auth import COGNITO_ENDPOINT_ENV, CredentialCache, DroaSession, cache_dir
from drtransfer_plugins.droa.layout import DroaLayout, plan_droa
from drtransfer_plugins.droa.site import SiteConfig, fetch_site

TARGET = "droa"
URL_ENV = "DR_DROA_URL"
USER_ENV = "DR_DROA_USERNAME"
S3_ENDPOINT_ENV = "DR_DROA_S3_ENDPOINT_URL"
READY = frozenset({"READY"})
FAILED = frozenset({"ERROR"})


@dataclass
class DroaState:
    session: DroaSession
    api: DroaApi
    endpoint: str  # the name of DRoA's upload bucket endpoint in the plan
    s3_endpoint_url: str | None
    layout: DroaLayout | None = None
    problem: str | None = field(default=None)  # why the model itself cannot be read

    @property
    def site(self) -> SiteConfig:
        return self.session.site


def _transfer_error(result: ModelResult) -> str:
    if result.error:
        return result.error
    failed = result.failed
    return failed[0].error or "an object failed" if failed else f"the transfer ended {result.status}"


class DroaImporter:
    """Registered as ``droa``. ``cache`` replaces the credential cache (default: :func:`cache_dir`)."""

    needs_local_model = True  # the chosen checkpoint goes from the local bucket into DRoA's upload bucket
    name_rule = f"DRoA: {checks.NAME_SENTENCE}"

    def __init__(self, cache: CredentialCache | None = None) -> None:
        self._cache = cache

    def default_priority(self, run: RunConfig, options: ImportOptions) -> int | None:
        """The default target of every run that names a DRoA site (``DR_DROA_URL``)."""
        return 10 if options.env(run, "DR_DROA_URL") else None

    def cache(self, options: ImportOptions) -> CredentialCache:
        return self._cache or CredentialCache(cache_dir(options.environ))

    def logout(self, options: ImportOptions) -> list[str]:
        """``drtransfer logout``: forget every cached DRoA sign-in."""
        return [str(path) for path in self.cache(options).clear()]

    # ---- before the upload ----

    def prepare(self, items: Sequence[PreparedImport], options: ImportOptions) -> None:
        sites: dict[str, SiteConfig] = {}
        sessions: dict[tuple[str, str], DroaSession] = {}
        problems: list[str] = []
        warnings: list[str] = []
        for item in items:
            run = item.run
            url = options.env(run, URL_ENV).rstrip("/")
            if not url:
                raise ConfigError(
                    f"Importing {run.label} into DRoA needs {URL_ENV}: set it (system.env) to the address of your DRoA "
                    f"website, e.g. https://d1234abcd.cloudfront.net."
                )
            username = options.env(run, USER_ENV)
            if not username:
                raise ConfigError(f"Importing into DRoA needs {USER_ENV}: set it (system.env) to your DRoA user name.")
            site = sites.get(url) or fetch_site(url)
            sites[url] = site
            session = sessions.get((url, username))
            if session is None:
                session = DroaSession(site, username, self.cache(options), options.secret,
                                      options.env(run, COGNITO_ENDPOINT_ENV) or None)
                sessions[(url, username)] = session
            endpoint = "droa-" + hashlib.sha256(f"{site.url}|{username}".encode()).hexdigest()[:8]
            state = DroaState(session, DroaApi(session), endpoint, options.env(run, S3_ENDPOINT_ENV) or None)
            item.state = state
            found = [checks.check_name(item.name), checks.check_description(options.description)]
            model, selection = item.model.inventory, item.model.selection
            if model is not None and selection is not None:
                try:
                    state.layout = plan_droa(model, selection, endpoint, site.upload_bucket, str(uuid.uuid4()))
                except ModelError as error:
                    found.append(str(error))
                else:
                    found += checks.model_problems(state.layout.training_params, model.metadata,
                                                   state.layout.hyperparameters, state.layout.plan.total_bytes)
                    warnings += [f"{run.label}: {w}." for w in checks.model_warnings(state.layout.training_params)]
            else:
                state.problem = item.model.error or "its model could not be read"
            problems += [f"{run.label} cannot be imported into DRoA: {p.rstrip('.')}." for p in found if p]
        if problems:
            raise ConfigError(" ".join(problems))
        for warning in warnings:
            if options.warn is not None:
                options.warn(warning)
        if options.dry_run:
            return
        for session in sessions.values():
            session.sign_in()
            try:
                DroaApi(session).check_access()
            except ConfigError:
                raise
            except DrTransferError as error:
                raise ConfigError(str(error)) from None

    # ---- after the upload ----

    def submit(
        self, items: Sequence[PreparedImport], options: ImportOptions, *, wait: bool, notify: Notify
    ) -> list[ImportResult]:
        results = [ImportResult(item.run.run_id, TARGET, item.name, "failed") for item in items]
        groups: dict[int, list[tuple[PreparedImport, ImportResult]]] = {}
        for item, result in zip(items, results, strict=True):
            state: DroaState = item.state
            if options.dry_run:
                result.status, result.message = "skipped", "not imported in a dry run."
            elif state.layout is None:
                result.message = f"it cannot be imported: {state.problem}"
            else:
                groups.setdefault(id(state.session), []).append((item, result))
        for group in groups.values():
            self._submit_group(group, options, notify)
        if wait:
            apis = {id(result): item.state.api for item, result in zip(items, results, strict=True)}

            def read_status(result: ImportResult) -> tuple[str, str | None]:
                model = apis[id(result)].get_model(result.model_id or "")
                status = str(model.get("status", ""))
                detail = str(model.get("importErrorMessage") or "").strip().rstrip(".")
                return status, f"DRoA reported {status}" + (f": {detail}." if detail else ".")

            wait_for_imports(results, read_status, ready=READY, failed=FAILED, options=options, notify=notify)
        return results

    def _submit_group(self, group: list[tuple[PreparedImport, ImportResult]], options: ImportOptions,
                      notify: Notify) -> None:
        """Copy every model of one signed-in user into DRoA's bucket at once, then import each."""
        first: DroaState = group[0][0].state
        try:
            credentials = first.session.credentials()
        except DrTransferError as error:
            for _item, result in group:
                result.message = str(error)
            return
        endpoints = {item.run.local.name: item.run.local for item, _ in group}
        endpoints[first.endpoint] = Endpoint(first.endpoint, first.s3_endpoint_url, first.site.region, credentials)
        plans = [item.state.layout.plan for item, _ in group]
        try:
            transferred = run_transfer(plans, endpoints, options.engine, options.subscribers)
        except Interrupted:
            raise
        except DrTransferError as error:
            for _item, result in group:
                result.message = f"copying it into DRoA's upload bucket failed: {error}"
            return
        for (item, result), copied in zip(group, transferred, strict=True):
            state: DroaState = item.state
            assert state.layout is not None
            result.source = f"s3://{state.site.upload_bucket}/{state.layout.s3_path}"
            if copied.status != "ok":
                result.message = f"copying it to {result.source} failed: {_transfer_error(copied).rstrip('.')}."
                continue
            try:
                model_id = state.api.import_model(state.site.upload_bucket, state.layout.s3_path, item.name,
                                                  options.description)
            except Interrupted:
                raise
            except DrTransferError as error:
                result.message = str(error)
                continue
            result.status, result.model_id, result.service_status = "submitted", model_id, "IMPORTING"
            notify(ImportSubmitted(run_id=item.run.run_id, target=TARGET, model_name=item.name, model_id=model_id,
                                   experiment=item.run.experiment or ""))
