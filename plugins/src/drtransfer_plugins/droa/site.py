"""DRoA discovery: ``<DR_DROA_URL>/env.js`` holds ``window.EnvironmentConfig = {...};`` (DRoA's
``website.ts`` writes it with ``JSON.stringify``) naming the region, the Cognito pools, the API and the
upload bucket."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from drtransfer.errors import ConfigError

_CONFIG = re.compile(r"window\.EnvironmentConfig\s*=\s*(\{.*\})\s*;?", re.DOTALL)
_KEYS = {
    "region": "region",
    "user_pool_id": "userPoolId",
    "user_pool_client_id": "userPoolClientId",
    "identity_pool_id": "identityPoolId",
    "api_endpoint": "apiEndpointUrl",
    "upload_bucket": "uploadBucketName",
}


@dataclass(frozen=True)
class SiteConfig:
    url: str
    region: str
    user_pool_id: str
    user_pool_client_id: str
    identity_pool_id: str
    api_endpoint: str
    upload_bucket: str

    @property
    def login_key(self) -> str:
        """The identity pool's ``Logins`` key for tokens of this user pool."""
        return f"cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"


def parse_env_js(text: str, source: str) -> SiteConfig:
    match = _CONFIG.search(text)
    if not match:
        raise ConfigError(
            f"{source} does not define window.EnvironmentConfig; check that DR_DROA_URL is the address of the "
            f"DRoA website."
        )
    try:
        data = json.loads(match.group(1))
    except ValueError as error:
        raise ConfigError(f"The EnvironmentConfig in {source} is not valid JSON ({error}).") from None
    if not isinstance(data, dict):
        raise ConfigError(f"The EnvironmentConfig in {source} is not an object.")
    missing = [key for key in _KEYS.values() if not isinstance(data.get(key), str) or not data[key]]
    if missing:
        raise ConfigError(f"The EnvironmentConfig in {source} lacks {', '.join(missing)}; is this a DRoA website?")
    site = source.removesuffix("/env.js")
    return SiteConfig(url=site, **{field: str(data[key]) for field, key in _KEYS.items()})


def fetch_site(url: str, timeout: float = 10.0) -> SiteConfig:
    """Read ``<url>/env.js``; an unreachable or wrong site is a ConfigError."""
    import requests  # only when an import is made: every command loads this plugin at start-up

    source = url.rstrip("/") + "/env.js"
    try:
        response = requests.get(source, timeout=timeout)
    except requests.RequestException as error:
        raise ConfigError(
            f"Cannot reach the DRoA website at {url} ({type(error).__name__}); check DR_DROA_URL and the network."
        ) from None
    if response.status_code != 200:
        raise ConfigError(f"{source} answered HTTP {response.status_code}; check that DR_DROA_URL is the DRoA website.")
    return parse_env_js(response.text, source)
