"""Where the vectors live: an embedded Chroma store under ``LOGPILOT_HOME/chroma``, or the Chroma server that
``LOGPILOT_CHROMA_URL`` names (``chroma run``, shared by every machine). Imports no Chroma."""

from __future__ import annotations

import os

SERVER_URL_ENV = "LOGPILOT_CHROMA_URL"


def server_url() -> str | None:
    """``LOGPILOT_CHROMA_URL`` (``http://host:port``, ``https://...``): the shared Chroma server; None: embedded."""
    return os.environ.get(SERVER_URL_ENV) or None
