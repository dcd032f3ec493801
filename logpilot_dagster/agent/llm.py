"""Optional LLM drafting through an OpenAI-compatible ``/chat/completions`` endpoint.

``backend_from_env()`` returns :class:`OpenAICompatibleBackend` when ``LOGPILOT_LLM_BASE_URL`` and
``LOGPILOT_LLM_MODEL`` are set (``LOGPILOT_LLM_API_KEY`` and ``LOGPILOT_LLM_TIMEOUT_S`` optional), else
:class:`OfflineBackend`, which drafts nothing so the offline planner does all the work. A draft is only ever
a proposal: the agent runs it through the SQL guard and checks its result against the question's slots, and
falls back to the offline planner when either fails. The endpoint is not trusted either: one deadline covers
the whole exchange (a server trickling bytes cannot hold a question), the reply is capped in bytes, and any
reply that is not a chat completion with text content is :class:`LLMError`.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from typing import Protocol
from urllib.parse import urlsplit

from logpilot_dagster.agent.guard import ALLOWED_COLUMNS

_SQL_BLOCK = re.compile(r"```(?:sql)?\s*(.+?)```", re.S | re.I)
DEFAULT_TIMEOUT_S = 20.0
MAX_REPLY_BYTES = 256 * 1024


class LLMError(RuntimeError):
    """The endpoint gave no usable draft: unreachable, too slow, too large or malformed."""


def schema_summary() -> str:
    """``table(column TYPE, ...)`` lines for the tables and columns the guard allows."""
    return "\n".join(
        f"{table}({', '.join(f'{name} {kind}' for name, kind in columns)})" for table, columns in ALLOWED_COLUMNS.items()
    )


class Backend(Protocol):
    """Drafts SQL for a question; ``None`` means "no draft, use the offline planner"; ``LLMError`` says why
    there is none."""

    name: str

    def draft_sql(self, question: str, hints: str, feedback: str | None = None) -> str | None: ...


class OfflineBackend:
    name = "offline"

    def draft_sql(self, question: str, hints: str, feedback: str | None = None) -> str | None:
        return None


def post_json(url: str, payload: dict, headers: dict[str, str], timeout_s: float, max_bytes: int) -> bytes:
    """POST ``payload`` and return the reply body, all within ``timeout_s``: the exchange runs in a thread,
    and its socket is shut down at the deadline."""
    parts = urlsplit(url)
    connection_class = HTTPSConnection if parts.scheme == "https" else HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=timeout_s)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    outcome: dict = {}

    def exchange() -> None:
        try:
            connection.request("POST", path, body=json.dumps(payload).encode(),
                               headers={"Content-Type": "application/json", **headers})
            response = connection.getresponse()
            outcome["reply"] = (response.status, response.read(max_bytes + 1))
        except (OSError, HTTPException) as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=exchange, daemon=True, name="logpilot-llm")
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        try:
            if connection.sock is not None:
                connection.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        connection.close()
        raise LLMError(f"no complete answer within {timeout_s:g} s")
    connection.close()
    if "error" in outcome:
        raise LLMError(f"request failed: {outcome['error']}")
    status, body = outcome["reply"]
    if status != 200:
        raise LLMError(f"HTTP {status}")
    if len(body) > max_bytes:
        raise LLMError(f"the answer is larger than {max_bytes:,} bytes")
    return body


def completion_text(body: bytes) -> str:
    """The first choice's message content of a chat-completions reply, or :class:`LLMError`."""
    try:
        reply = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise LLMError(f"the answer is not JSON: {str(exc)[:80]}") from None
    choices = reply.get("choices") if isinstance(reply, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str) or not content.strip():
        raise LLMError("the answer has no choices[0].message.content text")
    return content


class OpenAICompatibleBackend:
    """A small client for any server that speaks the OpenAI chat-completions API."""

    name = "openai-compatible"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s

    def complete(self, messages: list[dict]) -> str:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        payload = {"model": self.model, "messages": messages, "temperature": 0}
        return completion_text(post_json(self.url, payload, headers, self.timeout_s, MAX_REPLY_BYTES))

    def draft_sql(self, question: str, hints: str, feedback: str | None = None) -> str | None:
        system = (
            "You translate questions about application logs into one DuckDB SELECT statement. Only these tables "
            f"exist:\n{schema_summary()}\nLevels are DEBUG, INFO, WARN, ERROR, FATAL. Reply with the SQL only."
        )
        user = f"Question: {question}\nResolved: {hints}"
        if feedback:
            user += f"\nYour previous SQL failed: {feedback}\nFix it."
        reply = self.complete([{"role": "system", "content": system}, {"role": "user", "content": user}])
        block = _SQL_BLOCK.search(reply)
        return (block.group(1) if block else reply).strip().rstrip(";") or None


def backend_from_env() -> Backend:
    """The LLM backend configured by ``LOGPILOT_LLM_*`` variables, else the offline one."""
    base_url, model = os.environ.get("LOGPILOT_LLM_BASE_URL"), os.environ.get("LOGPILOT_LLM_MODEL")
    if base_url and model:
        timeout_s = float(os.environ.get("LOGPILOT_LLM_TIMEOUT_S", DEFAULT_TIMEOUT_S))
        return OpenAICompatibleBackend(base_url, model, os.environ.get("LOGPILOT_LLM_API_KEY"), timeout_s)
    return OfflineBackend()
