"""``LogPilotClient``: ask questions in English, get answers with the SQL, rows and sources behind them.

``now`` (for "last week", "since yesterday 9am") defaults to the latest ``ts`` in ``logs``, so relative
questions about an archive mean the same thing whenever they are asked; pass ``now=`` to pin another moment
(``datetime.now()`` for wall-clock time). The client only reads: every query runs through the SQL guard on a
read-only DuckDB connection. Questions longer than ``MAX_QUESTION_CHARS`` are refused before any parsing; a
warehouse that stays locked past the waits of ``warehouse.connect`` gets a "busy, retry" answer. ``Answer.quotes_logs`` says the
answer quotes text from the logs (marked in the text as untrusted data). When the question's range reaches
months that are in cold storage, the answer says so and how to restore them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb

from logpilot_dagster.agent import answer as answers
from logpilot_dagster.agent.entities import Resolver, System
from logpilot_dagster.agent.graph import Snapshot, Tools, build_graph
from logpilot_dagster.agent.guard import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S
from logpilot_dagster.agent.llm import Backend, backend_from_env
from logpilot_dagster.agent.planner import LOGS
from logpilot_dagster.lifecycle.catalog import cold_ranges
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.warehouse import WarehouseLockedError, connect

MAX_QUESTION_CHARS = 2000


@dataclass
class Answer:
    """One answered question."""

    question: str
    answer: str
    intent: str
    sql: str | None
    columns: list[str]
    rows: list[dict[str, Any]]
    sources: list[str]
    latency_ms: float
    confidence: float = 0.0
    trace: list[str] = field(default_factory=list)
    quotes_logs: bool = False

    def as_tuples(self) -> list[tuple]:
        """Rows as tuples in column order (for comparing result sets)."""
        return [tuple(row[c] for c in self.columns) for row in self.rows]


class LogPilotClient:
    """Question answering over one LogPilot home (DuckDB warehouse, Chroma vectors, runbooks)."""

    def __init__(
        self,
        db_path: str | Path | None = None,
        chroma_path: str | Path | None = None,
        runbooks_dir: str | Path | None = None,
        now: datetime | None = None,
        backend: Backend | None = None,
        max_rows: int = DEFAULT_MAX_ROWS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ):
        paths = LogPilotPaths.from_env()
        self.db_path = Path(db_path or paths.db_path)
        self.chroma_path = Path(chroma_path or paths.chroma_dir)
        self.runbooks_dir = Path(runbooks_dir or paths.runbooks_dir)
        self.now = now
        self.backend = backend or backend_from_env()
        self._graph = build_graph(
            Tools(self.db_path, self.backend, lambda: self.knowledge_base, self._similar_templates, max_rows, timeout_s)
        )

    @cached_property
    def knowledge_base(self):
        """The runbook + template knowledge base (built on first RCA question)."""
        from logpilot_dagster.knowledge.knowledge_base import KnowledgeBase

        return KnowledgeBase(self.chroma_path, self.runbooks_dir)

    def _similar_templates(self, query: str, service: str | None) -> list[str]:
        from logpilot_dagster.knowledge.vectors import search_templates

        hits = search_templates(query, self.chroma_path, k=3, service=service)
        return [hit["template_id"] for hit in hits if hit["score"] >= 0.5]

    def snapshot(self, now: datetime | None = None) -> Snapshot:
        """The catalog, template texts and reference time, read in one short read-only connection."""
        with connect(self.db_path, read_only=True) as con:
            first, latest = con.execute(f"SELECT min(ts), max(ts) FROM {LOGS}").fetchone()
            systems = [
                System(*row)
                for row in con.execute(
                    "SELECT system_name, department, owner_email, criticality FROM system_catalog ORDER BY system_name"
                ).fetchall()
            ]
            templates = [row[0] for row in con.execute("SELECT template FROM templates").fetchall()]
            try:
                cold = cold_ranges(con, None, None, None)
            except duckdb.CatalogException:  # a warehouse from before tiering
                cold = []
        # Data in the cold tier exists (the answer says how to restore it), so it counts for coverage.
        edges = [t for t in (first, latest) if t] + [t for c in cold for t in (c["min_ts"], c["max_ts"]) if t]
        coverage = (min(edges), max(edges)) if edges else (None, None)
        return Snapshot(now or self.now or latest or datetime.now(), Resolver(systems), templates, coverage,
                        tuple(cold))

    def ask(self, question: str, now: datetime | None = None) -> Answer:
        """Answer ``question``; ``now`` overrides the client's reference time for this call."""
        start = time.perf_counter()
        if len(question) > MAX_QUESTION_CHARS:
            text = f"The question is {len(question):,} characters long; the limit is {MAX_QUESTION_CHARS:,}."
            return self._short_answer(question, text, "out_of_scope", start)
        try:
            snapshot = self.snapshot(now)
        except WarehouseLockedError as exc:
            return self._short_answer(question, answers.BUSY, "busy", start, [f"snapshot: busy: {exc}"])
        state = self._graph.invoke({"question": question, "snapshot": snapshot, "trace": []})
        result = state.get("result") if state["intent"] != "rca" else state.get("evidence")
        plan = state.get("plan")
        columns = result.columns if result else []
        return Answer(
            question=question,
            answer=state["answer"],
            intent=state["intent"],
            sql=result.sql if result else (plan.sql if plan else None),
            columns=columns,
            rows=[dict(zip(columns, row)) for row in result.rows] if result else [],
            sources=state.get("sources", []),
            latency_ms=round((time.perf_counter() - start) * 1000, 2),
            confidence=state.get("confidence", 0.0),
            trace=state.get("trace", []),
            quotes_logs=state.get("quotes_logs", False),
        )

    @staticmethod
    def _short_answer(question: str, text: str, intent: str, start: float, trace: list[str] = ()) -> Answer:
        """An answer given without running the graph."""
        latency_ms = round((time.perf_counter() - start) * 1000, 2)
        return Answer(question, text, intent, None, [], [], [], latency_ms, trace=list(trace))
