"""Keyed pseudonyms for PII: ``<EMAIL:3f9a1c2b7d0e>`` instead of ``<EMAIL_REDACTED>``.

A token is the HMAC-SHA256 of the kind and the normalised value under a secret key, cut to 12 hex digits, so
counts per person still work and a purge can compute a person's token from the value without the value ever
being stored. The key lives outside the warehouse:

- ``LOGPILOT_PSEUDONYM_KEY``: the key itself (any string), or
- ``LOGPILOT_PSEUDONYM_KEY_FILE`` (default ``~/.config/logpilot/pseudonym.key``): one key per line, the current
  key first. The file is created with mode 0600 on first use and refused when others can read it.

Rotation: put a new key on the first line and keep the old ones below it. New data gets tokens under the new
key; :meth:`PseudonymKeys.tokens` gives a value's token under every key, so a purge still finds old data.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

MODE_ENV = "LOGPILOT_PII_MODE"
KEY_ENV = "LOGPILOT_PSEUDONYM_KEY"
KEY_FILE_ENV = "LOGPILOT_PSEUDONYM_KEY_FILE"
DEFAULT_KEY_FILE = Path("~/.config/logpilot/pseudonym.key")
REDACT, PSEUDONYMIZE = "redact", "pseudonymize"
TOKEN_HEX = 12


def pii_mode() -> str:
    """The masking mode in force: ``redact`` (default) or ``pseudonymize`` (``LOGPILOT_PII_MODE``)."""
    mode = (os.environ.get(MODE_ENV) or REDACT).strip().lower()
    if mode not in (REDACT, PSEUDONYMIZE):
        raise ValueError(f"{MODE_ENV} must be {REDACT!r} or {PSEUDONYMIZE!r}, not {mode!r}")
    return mode


def normalise(kind: str, value: str) -> str:
    """One spelling per value, so ``Bob@X.com`` and ``bob@x.com``, ``010.0.0.1`` and ``10.0.0.1`` match."""
    value = value.strip()
    if kind == "email":
        return value.replace("%40", "@").replace("\uff20", "@").lower()
    if kind in ("ip", "ipv6"):
        try:
            if kind == "ip" and value.count(".") == 3:
                return str(ipaddress.ip_address(".".join(str(int(part)) for part in value.split("."))))
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value.lower()
    if kind in ("credit_card", "ssn"):
        return "".join(ch for ch in value if ch.isdigit())
    return value


@dataclass(frozen=True)
class PseudonymKeys:
    """The current key and any older ones (rotation), loaded from the environment or the key file."""

    keys: tuple[bytes, ...]

    @classmethod
    def load(cls, create: bool = True) -> "PseudonymKeys":
        if os.environ.get(KEY_ENV):
            return cls((os.environ[KEY_ENV].encode(),))
        path = Path(os.environ.get(KEY_FILE_ENV) or DEFAULT_KEY_FILE).expanduser()
        if not path.exists():
            if not create:
                raise FileNotFoundError(f"no pseudonym key: set {KEY_ENV} or create {path}")
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32) + "\n")
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise PermissionError(f"pseudonym key file {path} must be readable by its owner only (chmod 600)")
        keys = tuple(line.strip().encode() for line in path.read_text().splitlines() if line.strip())
        if not keys:
            raise ValueError(f"pseudonym key file {path} holds no key")
        return cls(keys)

    def token(self, kind: str, value: str) -> str:
        """The placeholder for ``value`` under the current key, e.g. ``<EMAIL:3f9a1c2b7d0e>``."""
        return _token(self.keys[0], kind, value)

    def tokens(self, kind: str, value: str) -> list[str]:
        """The placeholder for ``value`` under every key, current first (for purges across rotations)."""
        return [_token(key, kind, value) for key in self.keys]


def _token(key: bytes, kind: str, value: str) -> str:
    digest = hmac.new(key, f"{kind}:{normalise(kind, value)}".encode(), hashlib.sha256).hexdigest()
    label = {"credit_card": "CC"}.get(kind, kind.upper())
    return f"<{label}:{digest[:TOKEN_HEX]}>"
