"""Where the tier store is: ``$LOGPILOT_HOME/tiers`` by default, or an S3 bucket/prefix."""

from __future__ import annotations

import os
from dataclasses import dataclass

from logpilot_dagster.settings import LogPilotPaths

#: The tiers' top-level key prefixes in the store.
WARM, COLD, RESTORED = "warm", "cold", "restored"


@dataclass(frozen=True)
class TierStoreSettings:
    """``bucket`` empty: a local directory ``local_root``; else ``s3://bucket/prefix`` at ``endpoint_url``.

    Environment: ``LOGPILOT_TIER_BUCKET``, ``LOGPILOT_TIER_PREFIX``, ``LOGPILOT_S3_ENDPOINT_URL``,
    ``LOGPILOT_COLD_STORAGE_CLASS`` (``GLACIER`` | ``DEEP_ARCHIVE`` | ...)."""

    local_root: str
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str | None = None
    cold_storage_class: str = "GLACIER"

    @classmethod
    def from_env(cls, paths: LogPilotPaths) -> "TierStoreSettings":
        return cls(local_root=str(paths.home / "tiers"), bucket=os.environ.get("LOGPILOT_TIER_BUCKET", ""),
                   prefix=os.environ.get("LOGPILOT_TIER_PREFIX", "").strip("/"),
                   endpoint_url=os.environ.get("LOGPILOT_S3_ENDPOINT_URL") or None,
                   cold_storage_class=os.environ.get("LOGPILOT_COLD_STORAGE_CLASS", "GLACIER"))

    @property
    def is_s3(self) -> bool:
        return bool(self.bucket)

    @property
    def root(self) -> str:
        """The URI every object key is relative to (no trailing slash)."""
        if self.is_s3:
            return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return self.local_root.rstrip("/")

    def uri(self, key: str) -> str:
        return f"{self.root}/{key}"
