"""The chat interface and its HTTP backend for an OpenAI-compatible ``/chat/completions`` endpoint.

``chat_from_env()`` returns a client when ``LOGPILOT_LLM_BASE_URL`` and ``LOGPILOT_LLM_MODEL`` are set
(``LOGPILOT_LLM_API_KEY`` and ``LOGPILOT_LLM_TIMEOUT_S`` optional), else ``None``: everything that uses it works
offline without one. The endpoint is not trusted: one deadline covers the whole exchange (a server trickling
bytes cannot hold the caller), the reply is capped in bytes, and any reply that is not a chat completion with
text content is :class:`LLMError`.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

DEFAULT_TIMEOUT_S = 20.0
MAX_REPLY_BYTES = 256 * 1024


class LLMError(RuntimeError):
    """The endpoint gave no usable answer: unreachable, too slow, too large or malformed."""


class Chat(Protocol):
    """One chat completion: ``messages`` in, the reply's text out, or :class:`LLMError`."""

    model: str

    def complete(self, messages: list[dict]) -> str: ...


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


class OpenAICompatibleChat:
    """The HTTP backend: any server that speaks the OpenAI chat-completions API."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s

    def complete(self, messages: list[dict]) -> str:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        payload = {"model": self.model, "messages": messages, "temperature": 0}
        return completion_text(post_json(self.url, payload, headers, self.timeout_s, MAX_REPLY_BYTES))


ChatT = TypeVar("ChatT", bound=OpenAICompatibleChat)


def chat_from_env(cls: type[ChatT] = OpenAICompatibleChat) -> ChatT | None:
    """A ``cls`` client for the endpoint the ``LOGPILOT_LLM_*`` variables configure, else ``None``."""
    base_url, model = os.environ.get("LOGPILOT_LLM_BASE_URL"), os.environ.get("LOGPILOT_LLM_MODEL")
    if not (base_url and model):
        return None
    timeout_s = float(os.environ.get("LOGPILOT_LLM_TIMEOUT_S", DEFAULT_TIMEOUT_S))
    return cls(base_url, model, os.environ.get("LOGPILOT_LLM_API_KEY"), timeout_s)
