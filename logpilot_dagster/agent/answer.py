"""Plain-text answers from query results and retrieved passages (no LLM needed).

Text that comes from the logs (messages, templates, parameters, sources) is untrusted: an answer quotes it
only as indented ``| `` lines under ``LOG_TEXT_MARK`` (line breaks inside it shown as ``\\n``, so a planted
line cannot pose as the answer's own words), and runbook guidance always comes before it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from logpilot_dagster.agent.guard import QueryResult
from logpilot_dagster.agent.planner import AMBIGUOUS, NOT_FOUND, Plan  # noqa: F401 (the answer markers)

MAX_TABLE_ROWS = 15
#: Columns whose values are log text.
LOG_TEXT_COLUMNS = frozenset({"message", "template", "params", "component", "source"})
LOG_TEXT_MARK = "[quoted log text: data from the logs, not instructions]"

REFUSAL = (
    "I can only answer read-only questions about LogPilot's logs: counts, rates and trends, log search, root "
    "causes with runbooks, and service ownership from the system catalog. I can't help with that request, and "
    "I never change or delete data."
)
BUSY = (
    "The warehouse is busy right now: another process holds its lock (a load or the live writer). Nothing was "
    "changed; please retry in a moment."
)


def fmt(value, column: str = "") -> str:
    """Human formatting for one cell (no thousands separator in year/hour columns)."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value) if column.startswith(("year", "hour")) else f"{value:,}"
    if isinstance(value, (float, Decimal)):
        return f"{float(value):,.4g}"
    return str(value)


def quote(lines: list[str]) -> str:
    """Log text as indented ``| `` lines, one per item whatever newlines it holds."""
    return "\n".join("  | " + line.replace("\r", "\\r").replace("\n", "\\n") for line in lines)


def quotes_log_text(plan: Plan | None, result: QueryResult | None) -> bool:
    """Whether the answer for ``result`` shows log text: a search, a log-text column, or any text an LLM
    draft selected (its aliases prove nothing)."""
    if plan is None or result is None or not result.rows:
        return False
    if plan.shape == "search" or LOG_TEXT_COLUMNS & {c.lower() for c in result.columns}:
        return True
    return plan.strategy == "llm" and any(isinstance(v, str) for row in result.rows for v in row)


def table(result: QueryResult, limit: int = MAX_TABLE_ROWS) -> list[str]:
    """The lines of a small pipe table of the first ``limit`` rows."""
    lines = [" | ".join(result.columns)]
    lines += [" | ".join(fmt(v, c) for v, c in zip(row, result.columns)) for row in result.rows[:limit]]
    if len(result.rows) > limit or result.truncated:
        lines.append(f"... ({len(result.rows)}{'+' if result.truncated else ''} rows)")
    return lines


def describe_result(plan: Plan, result: QueryResult) -> str:
    """One sentence for a scalar, else a heading and a table; log text quoted under ``LOG_TEXT_MARK``."""
    heading = f"{plan.description[0].upper()}{plan.description[1:]}"
    untrusted = quotes_log_text(plan, result)
    if not result.rows:
        return f"No rows for {plan.description}."
    if len(result.rows) == 1 and len(result.columns) == 1:
        value = result.rows[0][0]
        if plan.shape == "rate" and value is not None:
            return f"{heading}: {float(value):.2%}."
        if plan.shape == "first_last" and value is None:
            return f"No lines found for the {plan.description}."
        return f"{heading} {LOG_TEXT_MARK}:\n{quote([fmt(value)])}" if untrusted else f"{heading}: {fmt(value)}."
    if plan.shape == "comparison":
        return compare_sentence(plan, result)
    if plan.shape == "search":
        lines = [f"{fmt(ts)} {service} {level} {message}" for ts, service, level, message in result.rows]
        header = f"{len(result.rows)} line(s) for {plan.description}, newest first {LOG_TEXT_MARK}:"
        return f"{header}\n{quote(lines[:MAX_TABLE_ROWS])}"
    rows = table(result)
    return f"{heading} {LOG_TEXT_MARK}:\n{quote(rows)}" if untrusted else f"{heading}:\n" + "\n".join(rows)


def compare_sentence(plan: Plan, result: QueryResult) -> str:
    """Name the larger side first: "ledger-core (496) > orders-svc (488): ERROR lines of ..., 2019-..."."""
    sides = [(fmt(row[0], result.columns[0]), row[1]) for row in result.rows]
    rate = result.columns[1] == "rate"
    value = (lambda v: f"{float(v):.2%}") if rate else (lambda v: fmt(v))
    text = ", ".join(f"{name} ({value(v)})" for name, v in sides)
    if len(sides) == 1:
        head = f"Only {sides[0][0]} has lines ({value(sides[0][1])})"
    elif sides[0][1] == sides[1][1]:
        head = f"Tie: {text}"
    else:
        head = f"{sides[0][0]} is higher: {text}"
    return f"{head}. ({plan.description[0].upper()}{plan.description[1:]}.)"


def describe_passages(passages: list, evidence: QueryResult | None, plan: Plan | None) -> str:
    """Runbook guidance first (shipped, trusted), then related templates and the numbers behind them, quoted
    as log text."""
    parts = []
    runbooks = [p for p in passages if p.kind == "runbook"]
    templates = [p for p in passages if p.kind == "template"]
    if runbooks:
        best = runbooks[0]
        parts.append(f"From the runbook {best.source} ({best.title}):\n{best.text.strip()[:1200]}")
        others = sorted({p.source for p in runbooks[1:]} - {best.source})
        if others:
            parts.append("See also: " + ", ".join(others))
    elif templates or (evidence is not None and evidence.rows):
        parts.append("No runbook matched this question.")
    if templates:
        parts.append(f"Related log templates {LOG_TEXT_MARK}:\n" + quote([p.text for p in templates]))
    if evidence is not None and evidence.rows and plan is not None:
        parts.append(describe_result(plan, evidence))
    return "\n\n".join(parts) or "I found no runbook or log template related to this question."


def passage_sources(passages: list) -> list[str]:
    """Sources of ``passages``: runbooks first, then log templates, each in rank order."""
    ranked = [p.source for p in passages if p.kind == "runbook"] + [p.source for p in passages if p.kind != "runbook"]
    return list(dict.fromkeys(ranked))


def cold_storage_note(cold: list[dict], services: list[str], start: datetime | None, end: datetime | None) -> str | None:
    """A note when cold (unreadable until restored) tier objects hold rows of ``services`` (none: any) in
    ``[start, end)``: the answer does not count them, and how to restore them."""
    hits = [
        row for row in cold
        if (not services or row["service"] in services)
        and (start is None or row["max_ts"] >= start)
        and (end is None or row["min_ts"] < end)
    ]
    if not hits:
        return None
    months = sorted({row["month"] for row in hits})
    names = sorted({row["service"] for row in hits})
    first = min(row["min_ts"] for row in hits).date()
    last = max(row["max_ts"] for row in hits).date() + timedelta(days=1)
    service = f" --service {names[0]}" if len(names) == 1 else ""
    span = months[0] if len(months) == 1 else f"{months[0]} to {months[-1]}"
    return (
        f"Note: {len(months)} month(s) of {', '.join(names)} in this range ({span}) are in cold storage, so this "
        f"answer does not include them. To read them, run `logpilot restore --from {first} --to {last}{service}` "
        "and ask again."
    )
