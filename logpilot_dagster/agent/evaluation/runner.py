"""Run the agent over golden sets (``data/golden/*.jsonl``) and collect what it did next to the gold answers.

Each golden line is ``{"id", "question", "intent", "difficulty", "gold_sql" | "gold_sources" | "gold_answer"}``
plus an optional ``family`` (default: the intent). ``gold_answer`` is ``refusal``, ``not_found`` (the question
names something the data lacks) or ``ambiguous``. Gold SQL is executed on the same warehouse (through the same
guard), so expected results follow the data.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from logpilot_dagster.agent.client import LogPilotClient
from logpilot_dagster.agent.guard import GuardError, run_query
from logpilot_dagster.settings import SHIPPED_DATA

GOLDEN_DIR = SHIPPED_DATA / "golden"


@dataclass
class GoldenItem:
    id: str
    question: str
    intent: str
    difficulty: str
    gold_sql: str | None = None
    gold_sources: list[str] = field(default_factory=list)
    gold_answer: str | None = None
    family: str = ""

    def __post_init__(self) -> None:
        self.family = self.family or self.intent


@dataclass
class Outcome:
    """The agent's answer to one golden item, with the gold result set when there is gold SQL."""

    item: GoldenItem
    intent: str
    sql: str | None
    columns: list[str]
    rows: list[tuple]
    sources: list[str]
    answer: str
    latency_ms: float
    gold_columns: list[str] = field(default_factory=list)
    gold_rows: list[tuple] = field(default_factory=list)
    error: str | None = None


def load_golden(location: str | Path = GOLDEN_DIR) -> list[GoldenItem]:
    """Every item of one ``*.jsonl`` file, or of every such file in a directory (sorted by file name)."""
    location, items = Path(location), []
    for path in [location] if location.is_file() else sorted(location.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                data = json.loads(line)
                data.setdefault("id", f"{path.stem}-{number}")
                items.append(GoldenItem(**data))
    return items


def run(client: LogPilotClient, items: list[GoldenItem], warmup: bool = True) -> list[Outcome]:
    """Ask every question; the first (untimed) warm-up question loads the classifier and embedding model."""
    if warmup:
        client.ask("How many lines are there?")
        client.ask("How do I fix connection pool exhausted errors?")
    outcomes = []
    for item in items:
        started = time.perf_counter()
        try:
            answer = client.ask(item.question)
        except Exception as exc:  # an evaluation records failures instead of stopping at the first one
            outcomes.append(
                Outcome(
                    item,
                    "error",
                    None,
                    [],
                    [],
                    [],
                    "",
                    (time.perf_counter() - started) * 1000,
                    error=f"{type(exc).__name__}: {exc}",
                )
            )
            continue
        outcome = Outcome(
            item,
            answer.intent,
            answer.sql,
            answer.columns,
            answer.as_tuples(),
            answer.sources,
            answer.answer,
            answer.latency_ms,
        )
        if item.gold_sql:
            try:
                gold = run_query(client.db_path, item.gold_sql, max_rows=10_000, timeout_s=30, max_bytes=64 << 20)
                outcome.gold_columns, outcome.gold_rows = gold.columns, gold.rows
            except GuardError as exc:
                outcome.error = f"gold SQL rejected: {exc}"
        outcomes.append(outcome)
    return outcomes
