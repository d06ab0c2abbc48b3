"""``-p PREFIX``, as DRfC's commands read it (``dr-upload-model``, ``dr-upload-car-zip``)."""

from __future__ import annotations

from drtransfer.errors import ConfigError


def prefix_overrides(prefix: str | None, upload_prefix: str | None = None) -> dict[str, str]:
    """``-p PREFIX``: source prefix, its metrics and the target prefix all become PREFIX (as DRfC);
    ``--upload-prefix PREFIX``: the target prefix alone (also over ``-p``'s)."""
    overrides: dict[str, str] = {}
    if prefix is not None:
        prefix = prefix.strip("/")
        if not prefix:
            raise ConfigError("-p needs a non-empty prefix.")
        overrides = {
            "DR_LOCAL_S3_MODEL_PREFIX": prefix,
            "DR_LOCAL_S3_METRICS_PREFIX": f"{prefix}/metrics",
            "DR_UPLOAD_S3_PREFIX": prefix,
        }
    if upload_prefix is not None:
        if not upload_prefix.strip("/"):
            raise ConfigError(
                f"--upload-prefix {upload_prefix or repr(upload_prefix)} is the bucket root, where -w and the commit "
                f"objects would act on the whole bucket; give the model a prefix of its own."
            )
        overrides["DR_UPLOAD_S3_PREFIX"] = upload_prefix.strip("/")
    return overrides
