"""Optional LLM drafting through an OpenAI-compatible ``/chat/completions`` endpoint.

``backend_from_env()`` returns :class:`OpenAICompatibleBackend` when ``LOGPILOT_LLM_BASE_URL`` and
``LOGPILOT_LLM_MODEL`` are set (``LOGPILOT_LLM_API_KEY`` optional), else :class:`OfflineBackend`, which drafts
nothing so the offline planner does all the work. A draft is only ever a proposal: the agent runs it through
the SQL guard and a sanity check and falls back to the offline planner when either fails.
"""

from __future__ import annotations

import os
import re
from typing import Protocol

import requests
import sqlglot
from sqlglot import exp

from logpilot_dagster.agent.guard import ALLOWED_TABLES
from logpilot_dagster.storage.warehouse import SCHEMA

_SQL_BLOCK = re.compile(r"```(?:sql)?\s*(.+?)```", re.S | re.I)


def schema_summary() -> str:
    """``table(column TYPE, ...)`` lines for the allowed tables, read from the warehouse contract."""
    lines = []
    for statement in sqlglot.parse(SCHEMA, read="duckdb"):
        if isinstance(statement, exp.Create) and statement.this.name in ALLOWED_TABLES:
            columns = [
                f"{c.name} {c.args['kind'].sql('duckdb')}"
                for c in statement.this.expressions
                if isinstance(c, exp.ColumnDef)
            ]
            lines.append(f"{statement.this.name}({', '.join(columns)})")
    return "\n".join(lines)


class Backend(Protocol):
    """Drafts SQL for a question; ``None`` means "no draft, use the offline planner"."""

    name: str

    def draft_sql(self, question: str, hints: str, feedback: str | None = None) -> str | None: ...


class OfflineBackend:
    name = "offline"

    def draft_sql(self, question: str, hints: str, feedback: str | None = None) -> str | None:
        return None


class OpenAICompatibleBackend:
    """Plain ``requests`` client for any server that speaks the OpenAI chat-completions API."""

    name = "openai-compatible"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 30.0):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s

    def complete(self, messages: list[dict]) -> str:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        response = requests.post(
            self.url,
            json={"model": self.model, "messages": messages, "temperature": 0},
            headers=headers,
            timeout=self.timeout_s,
        )
        response.raise_for_status()
        return response.json()["choices"][0]["message"]["content"]

    def draft_sql(self, question: str, hints: str, feedback: str | None = None) -> str | None:
        system = (
            "You translate questions about application logs into one DuckDB SELECT statement. Only these tables "
            f"exist:\n{schema_summary()}\nLevels are DEBUG, INFO, WARN, ERROR, FATAL. Reply with the SQL only."
        )
        user = f"Question: {question}\nResolved: {hints}"
        if feedback:
            user += f"\nYour previous SQL failed: {feedback}\nFix it."
        try:
            reply = self.complete([{"role": "system", "content": system}, {"role": "user", "content": user}])
        except (requests.RequestException, KeyError, IndexError, ValueError):
            return None
        block = _SQL_BLOCK.search(reply)
        return (block.group(1) if block else reply).strip().rstrip(";") or None


def backend_from_env() -> Backend:
    """The LLM backend configured by ``LOGPILOT_LLM_*`` variables, else the offline one."""
    base_url, model = os.environ.get("LOGPILOT_LLM_BASE_URL"), os.environ.get("LOGPILOT_LLM_MODEL")
    if base_url and model:
        return OpenAICompatibleBackend(base_url, model, os.environ.get("LOGPILOT_LLM_API_KEY"))
    return OfflineBackend()
