"""Optional LLM drafting of SQL through the OpenAI-compatible client of :mod:`logpilot_dagster.llm`.

``backend_from_env()`` returns :class:`OpenAICompatibleBackend` when ``LOGPILOT_LLM_BASE_URL`` and
``LOGPILOT_LLM_MODEL`` are set (``LOGPILOT_LLM_API_KEY`` and ``LOGPILOT_LLM_TIMEOUT_S`` optional), else
:class:`OfflineBackend`, which drafts nothing so the offline planner does all the work. A draft is only ever
a proposal: the agent runs it through the SQL guard and checks its result against the question's slots, and
falls back to the offline planner when either fails (or the client raises ``LLMError``).
"""

from __future__ import annotations

import re
from typing import Protocol

from logpilot_dagster.agent.guard import ALLOWED_COLUMNS
from logpilot_dagster.llm import OpenAICompatibleChat, chat_from_env

_SQL_BLOCK = re.compile(r"```(?:sql)?\s*(.+?)```", re.S | re.I)


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


class OpenAICompatibleBackend(OpenAICompatibleChat):
    """Drafts SQL with any server that speaks the OpenAI chat-completions API."""

    name = "openai-compatible"

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
    return chat_from_env(OpenAICompatibleBackend) or OfflineBackend()
