"""``-p PREFIX``, as DRfC's commands read it (``dr-upload-model``, ``dr-upload-car-zip``)."""

from __future__ import annotations

from drtransfer.errors import ConfigError


def prefix_overrides(prefix: str | None) -> dict[str, str]:
    """``-p PREFIX``: source prefix, its metrics and the target prefix all become PREFIX (as DRfC)."""
    if prefix is None:
        return {}
    prefix = prefix.strip("/")
    if not prefix:
        raise ConfigError("-p needs a non-empty prefix.")
    return {
        "DR_LOCAL_S3_MODEL_PREFIX": prefix,
        "DR_LOCAL_S3_METRICS_PREFIX": f"{prefix}/metrics",
        "DR_UPLOAD_S3_PREFIX": prefix,
    }
