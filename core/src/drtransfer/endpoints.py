"""S3 endpoints and the clients that talk to them.

An :class:`Endpoint` is plain, picklable data (URL, region, resolved credentials), so it can be sent to
worker processes, which build their own clients with :func:`make_s3_client` (botocore clients cannot be
pickled). Credentials are resolved once in the parent (:func:`resolve_credentials`) and never printed:
their ``repr`` hides every secret.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
import botocore.config
import botocore.configprovider
import botocore.credentials
import botocore.exceptions
import botocore.httpsession
import botocore.session
import botocore.utils

from drtransfer.errors import ConfigError


@dataclass(frozen=True)
class Credentials:
    """Static credentials; ``repr`` shows only a masked access key id."""

    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"Credentials(access_key={mask(self.access_key)!r})"


def mask(value: str) -> str:
    """Show the first 4 characters of an identifier and hide the rest (never use on a secret)."""
    return value[:4] + "…" if len(value) > 4 else "…"


@dataclass(frozen=True)
class Endpoint:
    """Where a bucket lives and who we are there.

    ``url`` is ``None`` for AWS itself; ``profile`` is kept for messages ("profile minio"), the
    credentials are what clients use. ``url_variable`` names the variable the URL came from
    (``DR_UPLOAD_S3_ENDPOINT_URL`` ...), for messages only: it takes no part in comparisons.
    """

    name: str
    url: str | None
    region: str
    credentials: Credentials | None
    profile: str | None = None
    url_variable: str | None = field(default=None, compare=False)

    def describe(self) -> str:
        where = self.url or f"AWS S3 ({self.region})"
        return f"{self.name} endpoint {where}"

    def same_store(self, other: Endpoint) -> bool:
        """True when a server-side copy between the two is possible (same server, same identity)."""
        return (self.url, self.region, self.credentials) == (other.url, other.region, other.credentials)


@dataclass(frozen=True)
class ClientSettings:
    """Connection settings shared by every client the engine creates."""

    max_pool_connections: int = 10
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    # botocore's default "standard" mode shares a small retry quota across a client and gives up
    # within ~1.5 s of a server outage; "legacy" with more attempts rides out several seconds, and
    # the engine adds its own outer retry on top.
    retry_mode: str = "legacy"
    max_attempts: int = 10  # botocore's retries after the first attempt
    # False: botocore retries HTTP answers only (SlowDown, 5xx); a request that got no answer (refused,
    # timed out, reset) fails at once, so the caller does the waiting and can report it. In legacy mode
    # botocore waits rand(0..1) x 2^n s before retry n: ten retries of a dead server are ~8 minutes of
    # silence per request.
    retry_connection_errors: bool = True


# Checks made before anything is written (buckets, permissions, model inspection): one attempt with
# short timeouts, so a server that is down, unreachable or silent is reported within seconds.
PREFLIGHT_SETTINGS = ClientSettings(connect_timeout=3.0, read_timeout=5.0, max_attempts=0)


def resolve_credentials(
    name: str,
    *,
    profile: str | None,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    environ: Mapping[str, str] | None = None,
    profile_variable: str | None = None,
) -> Credentials | None:
    """Resolve credentials once: explicit keys win, else the named profile, else boto3's default chain.

    ``environ`` replaces ``os.environ`` for every variable botocore reads (``AWS_SHARED_CREDENTIALS_FILE``,
    ``AWS_CONFIG_FILE``, ``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``, ``HOME`` for ``~/.aws`` ...), so a caller
    that was handed an environment mapping gets exactly that environment (web-identity credentials, which
    botocore reads from ``os.environ`` only, need ``environ=None``). A missing profile named
    ``default`` falls back to the default chain (environment keys, container or instance role): DRfC on
    EC2 with an instance role leaves the profile out the same way. A missing profile is a ConfigError
    naming the credentials and config files botocore read and ``profile_variable``, the setting that
    named the profile.
    """
    if access_key and secret_key:
        return Credentials(access_key, secret_key, session_token)
    try:
        try:
            found = _botocore_session(profile, environ).get_credentials()
        except botocore.exceptions.ProfileNotFound:
            if profile != "default":
                raise
            found = _botocore_session(None, environ).get_credentials()
    except botocore.exceptions.ProfileNotFound as error:
        missing = error.kwargs.get("profile", profile)
        credentials_file, config_file = _profile_files(environ)
        fix = f"fix {profile_variable}" if profile_variable else "set the right profile name"
        raise ConfigError(
            f"The {name} AWS profile {missing!r} does not exist: there is no [{missing}] in {credentials_file} "
            f"and no [profile {missing}] in {config_file}; add it to one of them or {fix}."
        ) from None
    except botocore.exceptions.BotoCoreError as error:
        raise ConfigError(f"Cannot read the {name} credentials: {error}.") from None
    if found is None:
        return None
    frozen = found.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


def _profile_files(environ: Mapping[str, str] | None) -> tuple[str, str]:
    """The credentials and config files botocore reads profiles from, each with the variable that chose
    it (``/path (AWS_SHARED_CREDENTIALS_FILE)``) or as the expanded default path."""
    env = os.environ if environ is None else environ
    home = env.get("HOME") or os.path.expanduser("~")
    described = []
    for variable, default in (("AWS_SHARED_CREDENTIALS_FILE", "credentials"), ("AWS_CONFIG_FILE", "config")):
        chosen = env.get(variable)
        if chosen:
            described.append(f"{os.path.expanduser(chosen)} ({variable})")
        else:
            described.append(os.path.join(home, ".aws", default))
    return described[0], described[1]


def _botocore_session(profile: str | None, environ: Mapping[str, str] | None) -> Any:
    """A botocore session for ``profile`` that reads ``environ`` instead of ``os.environ`` when given."""
    session = botocore.session.Session(profile=profile)
    if environ is None:
        return session
    env = dict(environ)
    # Rebuild every session variable's lookup chain (instance > env > config file > default) on `env`.
    chains = botocore.configprovider.ConfigChainFactory(session=session, environ=env)
    store = session.get_component("config_store")
    for logical, spec in botocore.configprovider.BOTOCORE_DEFAUT_SESSION_VARIABLES.items():
        config_name, env_names, default, convert = spec
        if isinstance(default, str) and default.startswith("~/") and env.get("HOME"):
            default = os.path.join(env["HOME"], default[2:])
        chain = chains.create_config_chain(
            instance_name=logical,
            env_var_names=env_names,
            config_property_names=config_name,
            default=default,
            conversion_func=convert,
        )
        store.set_config_provider(logical, chain)
    # The credential providers that read the environment directly get `env` too.
    resolver = botocore.credentials.create_credential_resolver(session)
    fetcher = botocore.utils.InstanceMetadataFetcher(
        timeout=session.get_config_variable("metadata_service_timeout"),
        num_attempts=session.get_config_variable("metadata_service_num_attempts"),
        env=env,
        user_agent=session.user_agent(),
        config={
            "ec2_metadata_service_endpoint": session.get_config_variable("ec2_metadata_service_endpoint"),
            "ec2_metadata_service_endpoint_mode": botocore.utils.resolve_imds_endpoint_mode(session),
            "ec2_metadata_v1_disabled": session.get_config_variable("ec2_metadata_v1_disabled"),
        },
    )
    replacements = [
        botocore.credentials.EnvProvider(environ=env),
        botocore.credentials.OriginalEC2Provider(environ=env),
        botocore.credentials.BotoProvider(environ=env),
        botocore.credentials.ContainerProvider(environ=env),
        botocore.credentials.InstanceMetadataProvider(iam_role_fetcher=fetcher),
    ]
    methods = [provider.METHOD for provider in resolver.providers]
    for provider in replacements:
        if provider.METHOD in methods:
            resolver.providers[methods.index(provider.METHOD)] = provider
    # Web identity reads os.environ itself and cannot be pointed elsewhere: leave it out.
    resolver.remove("assume-role-with-web-identity")
    session.register_component("credential_provider", resolver)
    return session


_session_lock = threading.Lock()
_build_lock = threading.Lock()  # held while a client is made, so threads asking at once share one
_shared_loader: Any = None
# One client per (endpoint, settings) per process: a client costs a Session, its config chain and endpoint
# rules (about 18% of a small upload's parent CPU when made per call); clients are thread-safe.
_clients: dict[tuple[Endpoint, ClientSettings], Any] = {}


def _after_fork_in_child() -> None:
    global _session_lock, _build_lock
    _session_lock = threading.Lock()  # another thread of the parent may have held it at the fork
    _build_lock = threading.Lock()
    _clients.clear()  # their pooled sockets belong to the parent


os.register_at_fork(after_in_child=_after_fork_in_child)


def _new_session() -> boto3.session.Session:
    """A fresh boto3 session sharing this process's botocore data loader: the S3 model and endpoint
    rules are parsed once per process (about 50-100 ms of CPU each time otherwise) and a forked worker
    inherits them already parsed. Sessions stay separate, so nothing else (credentials, config) is shared."""
    global _shared_loader
    with _session_lock:
        core = botocore.session.get_session()
        core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=parse_timestamp)
        if _shared_loader is not None:
            core.register_component("data_loader", _shared_loader)
        session = boto3.session.Session(botocore_session=core)
        loader = core.get_component("data_loader")
        paths = loader.search_paths  # boto3 appends its data directory for every session
        if len(set(paths)) != len(paths):
            paths[:] = list(dict.fromkeys(paths))
        _shared_loader = loader
    return session


def make_s3_client(endpoint: Endpoint, settings: ClientSettings | None = None) -> Any:
    """The S3 client of this process for ``endpoint`` and ``settings`` (made on first use, then shared:
    never close it), configured for S3-compatible servers as well as AWS."""
    settings = settings or ClientSettings()
    key = (endpoint, settings)
    client = _clients.get(key)
    if client is None:
        with _build_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = _new_client(endpoint, settings)
    return client


# What decides the CA bundle botocore's clients verify TLS with (read again when one of them changes).
_CA_VARIABLES = ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "AWS_PROFILE", "AWS_CONFIG_FILE", "HOME")


def tls_ca_bundle() -> str:
    """The CA bundle (file or directory) this process's S3 clients verify TLS with, for connections made
    without botocore (the lean data path), in botocore's order: its ``ca_bundle`` setting
    (``AWS_CA_BUNDLE``, or ``ca_bundle`` in the profile's config), else ``REQUESTS_CA_BUNDLE``, else the
    bundle botocore ships."""
    return _ca_bundle(tuple(os.environ.get(name) for name in _CA_VARIABLES))


@functools.lru_cache(maxsize=8)
def _ca_bundle(environment: tuple[str | None, ...]) -> str:
    configured = botocore.session.Session().get_config_variable("ca_bundle")
    bundle: str = configured or os.environ.get("REQUESTS_CA_BUNDLE") or botocore.httpsession.get_cert_path(True)
    return bundle


def list_pages(list_objects: Callable[..., dict[str, Any]], **kwargs: Any) -> Iterator[dict[str, Any]]:
    """The pages of ``list_objects(**kwargs)`` (a client's ``list_objects_v2``, or a call that wraps it),
    followed by continuation token. Used instead of botocore's paginator: its first use per process scans
    every service directory of botocore's data (~10 ms), and threads that start listing at once each ran
    that scan (8 inspections: ~0.1 CPU-s)."""
    while True:
        page = list_objects(**kwargs)
        yield page
        if not page.get("IsTruncated") or not page.get("NextContinuationToken"):
            return
        kwargs = {**kwargs, "ContinuationToken": page["NextContinuationToken"]}


def parse_timestamp(value: Any) -> datetime:
    """The timestamp parser of our clients. botocore's own (dateutil, about 86 us each) was the largest
    cost of reading a long listing; the ISO 8601 form of every listing's ``LastModified`` goes through
    ``datetime.fromisoformat`` (well under 1 us), anything else (HTTP dates, epoch seconds) to botocore."""
    if isinstance(value, str) and len(value) >= 20 and value[10:11] == "T":
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    result: datetime = botocore.utils.parse_timestamp(value)
    return result


def _new_client(endpoint: Endpoint, settings: ClientSettings) -> Any:
    config = botocore.config.Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"} if endpoint.url else {},
        max_pool_connections=settings.max_pool_connections,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"mode": settings.retry_mode, "max_attempts": settings.max_attempts},
        # Some servers return a whole-object checksum on ranged GETs; we verify content ourselves.
        response_checksum_validation="when_required",
        request_checksum_calculation="when_required",
    )
    creds = endpoint.credentials
    session = _new_session()
    client = session.client(
        "s3",
        endpoint_url=endpoint.url,
        region_name=endpoint.region,
        aws_access_key_id=creds.access_key if creds else None,
        aws_secret_access_key=creds.secret_key if creds else None,
        aws_session_token=creds.session_token if creds else None,
        config=config,
    )
    if not settings.retry_connection_errors:
        client.meta.events.register_first("needs-retry.s3", _no_retry_without_answer)
    return client


def _no_retry_without_answer(caught_exception: BaseException | None = None, **_: Any) -> bool | None:
    """botocore's ``needs-retry``: the first handler that answers decides, and ``False`` means no retry."""
    return False if caught_exception is not None else None
