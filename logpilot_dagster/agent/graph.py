"""The query agent as a LangGraph state machine: classify -> plan -> act -> observe (-> plan ...) -> respond.

``observe`` feeds a SQL error, an empty result, or an implausible value back to ``plan``, which moves on to
the next strategy (LLM draft -> exact phrase -> word stems -> template vectors); at most ``MAX_RETRIES``
retries. Log content only ever reaches the answer text, marked as quoted data: plans are made from the
question alone. An LLM draft must also give the same result when every table is cut down to the question's
slots (services, levels, time range): a draft that ignores them is caught by what it returns, not by what
its text mentions. A warehouse that stays locked ends the question with a "busy, retry" answer.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Callable, TypedDict

from langgraph.graph import END, START, StateGraph
from sqlglot import exp

from logpilot_dagster.agent import answer as answers
from logpilot_dagster.agent.changes import change_kind, describe_changes, plan_changes
from logpilot_dagster.agent.entities import Resolver
from logpilot_dagster.agent.guard import GuardError, QueryResult, check_sql, run_query
from logpilot_dagster.agent.intent import classify
from logpilot_dagster.agent.llm import Backend
from logpilot_dagster.agent.planner import (
    SEARCH_STRATEGIES,
    Plan,
    plan_catalog,
    plan_metrics,
    plan_rca_evidence,
    plan_search,
    unanswerable,
)
from logpilot_dagster.agent.question import ParsedQuestion, parse_question
from logpilot_dagster.llm import LLMError
from logpilot_dagster.storage.warehouse import WarehouseLockedError

MAX_RETRIES = 2
SEARCH_COLUMNS = 4  # ts, service, level, message
OFFLINE_STRATEGIES = {
    "metrics": ("phrase", "stems"),
    "search": SEARCH_STRATEGIES,
    "catalog": ("slots",),
    "rca": ("rag",),
    "changes": ("analytics",),
    "out_of_scope": (),
}


@dataclass(frozen=True)
class Snapshot:
    """What the planner needs from the warehouse, read once per question."""

    now: datetime
    resolver: Resolver
    templates: list[str]
    coverage: tuple[datetime | None, datetime | None] | None = None  # first and last event time, any tier
    cold: tuple[dict, ...] = ()  # cold tier objects not readable until restored (``lifecycle.catalog.cold_ranges``)


class AgentState(TypedDict, total=False):
    question: str
    snapshot: Snapshot
    parsed: ParsedQuestion
    intent: str
    confidence: float
    strategies: list[str]
    attempt: int
    plan: Plan | None
    planned: bool
    result: QueryResult | None
    error: str | None
    busy: str | None
    feedback: str | None
    passages: list[Any]
    evidence: QueryResult | None
    answer: str
    sources: list[str]
    quotes_logs: bool
    trace: Annotated[list[str], operator.add]


@dataclass
class Tools:
    """The agent's dependencies: where to read, how to retrieve, and an optional LLM."""

    db_path: Path
    backend: Backend
    knowledge_base: Callable[[], Any]  # lazily built KnowledgeBase
    template_search: Callable[[str, str | None], list[str]]  # (query, service) -> template ids
    max_rows: int
    timeout_s: float


def _hints(parsed: ParsedQuestion) -> str:
    e = parsed.entities
    items = [
        f"services={e.services}",
        f"departments={e.departments}",
        f"levels={e.levels}",
        f"criticalities={e.criticalities}",
    ]
    if parsed.time:
        r = parsed.time.range
        items.append(f"time: ts >= {r.start} and ts < {r.end} ({r.label})")
    if parsed.quoted or parsed.phrases:
        items.append(f"message phrases={parsed.quoted + parsed.phrases}")
    return "; ".join(items)


def _literals(values: list[str]) -> str:
    return ", ".join(exp.Literal.string(v).sql("duckdb") for v in values)


def slot_filters(parsed: ParsedQuestion, resolver: Resolver) -> dict[str, str]:
    """Per table, the rows the question's slots allow (for the sandbox's views): its services (those of its
    departments included), levels and time range."""
    e = parsed.entities
    services = list(dict.fromkeys(e.services + [s.name for s in resolver.systems if s.department in e.departments]))
    filters, logs = {}, []
    if services:
        logs.append(f"service IN ({_literals(services)})")
        filters["templates"] = f"service IN ({_literals(services)})"
        filters["system_catalog"] = f"system_name IN ({_literals(services)})"
    if e.levels:
        logs.append(f"level IN ({_literals(e.levels)})")
    if parsed.time:
        logs += parsed.time.range.sql("ts")
    if logs:
        filters["logs"] = filters["logs_all"] = " AND ".join(logs)
    return filters


def _same_rows(a: QueryResult, b: QueryResult) -> bool:
    """Equal result sets (order aside; floats within rounding; only the sizes when either was truncated)."""
    if a.truncated or b.truncated or len(a.rows) != len(b.rows):
        return len(a.rows) == len(b.rows) and a.truncated == b.truncated

    def close(x, y) -> bool:
        if isinstance(x, float) or isinstance(y, float):
            return isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isclose(x, y, rel_tol=1e-9)
        return x == y

    left, right = sorted(a.rows, key=repr), sorted(b.rows, key=repr)
    return all(len(x) == len(y) and all(map(close, x, y)) for x, y in zip(left, right))


def _implausible(plan: Plan, result: QueryResult, parsed: ParsedQuestion) -> str | None:
    """Why a result should not be trusted, or ``None``."""
    if plan.strategy == "llm" and plan.shape == "search" and len(result.columns) != SEARCH_COLUMNS:
        return f"the draft returns {len(result.columns)} columns, not (ts, service, level, message)"
    if not result.rows:
        return (
            "the query returned no rows" if plan.shape in ("search", "first_last") or plan.strategy == "llm" else None
        )
    numbers = [v for row in result.rows for v in row if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if any(v < 0 for v in numbers) or (plan.shape == "rate" and any(v > 1 for v in numbers)):
        return "implausible values (negative count or rate above 1)"
    filtered = "ILIKE" in (plan.sql or "").upper()
    scalar = result.rows[0][0] if len(result.rows) == 1 and len(result.columns) == 1 else "n/a"
    if filtered and scalar in (0, None):
        return "no line matched the message filter"
    return None


def build_graph(tools: Tools):
    """Compile the agent graph bound to ``tools``."""

    def classify_node(state: AgentState) -> dict:
        snapshot = state["snapshot"]
        parsed = parse_question(state["question"], snapshot.resolver, snapshot.now, snapshot.templates)
        kind = change_kind(state["question"])
        intent, confidence = ("changes", 1.0) if kind else classify(parsed)
        strategies = list(OFFLINE_STRATEGIES[intent])
        if tools.backend.name != "offline" and intent in ("metrics", "search", "catalog"):
            strategies.insert(0, "llm")
        return {
            "parsed": parsed,
            "intent": intent,
            "confidence": confidence,
            "strategies": strategies,
            "attempt": 0,
            "trace": [f"classify: {intent} ({confidence:.2f}); masked={parsed.masked!r}"],
        }

    def plan_node(state: AgentState) -> dict:
        parsed, strategies = state["parsed"], list(state["strategies"])
        trace = []
        if state["intent"] in ("metrics", "search", "catalog"):
            refusal = unanswerable(parsed, state["snapshot"].coverage)
            if refusal:
                trace.append(f"plan: {refusal.shape}: {refusal.description}")
                return {"plan": refusal, "planned": True, "strategies": [], "trace": trace}
        while strategies:
            strategy = strategies.pop(0)
            plan = _make_plan(state["intent"], strategy, parsed, state, trace)
            if plan is None:
                continue
            if plan.sql is not None:
                try:
                    check_sql(plan.sql, tools.max_rows)
                except GuardError as exc:
                    trace.append(f"plan[{strategy}]: rejected by guard: {exc}")
                    continue
            trace.append(f"plan[{strategy}]: {plan.sql}")
            return {"plan": plan, "planned": True, "strategies": strategies, "trace": trace}
        return {"planned": False, "strategies": [], "trace": trace + ["plan: no strategy left"]}

    def _make_plan(intent: str, strategy: str, parsed: ParsedQuestion, state: AgentState, trace: list) -> Plan | None:
        templates = state["snapshot"].templates
        if strategy == "llm":
            try:
                draft = tools.backend.draft_sql(state["question"], _hints(parsed), state.get("feedback"))
            except LLMError as exc:
                trace.append(f"plan[llm]: no draft ({exc})")
                return None
            if not draft:
                trace.append("plan[llm]: no draft")
                return None
            shape = "search" if intent == "search" else "llm"
            return Plan(draft, shape, f"answer to: {state['question']}", "llm")
        if intent == "metrics":
            return plan_metrics(parsed, templates, strategy)
        if intent == "search":
            ids = []
            if strategy == "vectors":
                query = " ".join(parsed.quoted + parsed.phrases) or parsed.residual
                service = parsed.entities.services[0] if len(parsed.entities.services) == 1 else None
                ids = tools.template_search(query, service)
            return plan_search(parsed, templates, strategy, ids)
        if intent == "catalog":
            return plan_catalog(parsed)
        if intent == "changes":
            return plan_changes(change_kind(state["question"]), parsed, state["snapshot"].now)
        if intent == "rca":
            scoped = parsed.entities.services or parsed.entities.departments
            return plan_rca_evidence(parsed) if scoped else Plan(None, "rca", "root cause", "rag")
        return None

    def act_node(state: AgentState) -> dict:
        plan, updates = state.get("plan"), {"error": None, "result": None}
        if state["intent"] == "rca":
            service = (state["parsed"].entities.services or [None])[0]
            updates["passages"] = tools.knowledge_base().search(state["question"], k=5, service=service)
        if plan is None or plan.sql is None:
            return updates
        try:
            result = run_query(tools.db_path, plan.sql, tools.max_rows, tools.timeout_s)
        except WarehouseLockedError as exc:
            return {**updates, "busy": str(exc), "strategies": [], "trace": [f"act: busy: {exc}"]}
        except GuardError as exc:
            return {**updates, "error": f"GuardError: {exc}", "trace": [f"act: GuardError: {exc}"]}
        key = "evidence" if state["intent"] == "rca" else "result"
        return {**updates, key: result, "trace": [f"act: {len(result.rows)} row(s) in {result.elapsed_ms:.0f} ms"]}

    def _ignores_slots(plan: Plan, result: QueryResult, state: AgentState) -> str | None:
        """Why an LLM draft's result does not follow the question's slots, or ``None``."""
        filters = slot_filters(state["parsed"], state["snapshot"].resolver)
        if plan.strategy != "llm" or not filters:
            return None
        try:
            restricted = run_query(tools.db_path, plan.sql, tools.max_rows, tools.timeout_s, restrict=filters)
        except (GuardError, WarehouseLockedError) as exc:
            return f"the draft could not be checked against the question's slots ({exc})"
        if not _same_rows(result, restricted):
            return "the draft ignores the question's services, levels or time range (its result changes when " \
                   "the tables are cut down to them)"
        return None

    def observe_node(state: AgentState) -> dict:
        plan, result = state.get("plan"), state.get("result")
        problem = state.get("error")
        if state.get("busy"):
            return {"feedback": None}
        if problem is None and plan is not None and result is not None:
            problem = _implausible(plan, result, state["parsed"]) or _ignores_slots(plan, result, state)
        if problem is None:
            return {"feedback": None}
        retry = bool(state["strategies"]) and state["attempt"] < MAX_RETRIES
        return {
            "feedback": problem,
            "attempt": state["attempt"] + (1 if retry else 0),
            "trace": [f"observe: {problem}; {'retrying' if retry else 'giving up'}"],
            "strategies": state["strategies"] if retry else [],
        }

    def respond_node(state: AgentState) -> dict:
        intent, plan = state["intent"], state.get("plan")
        if intent == "out_of_scope":
            return {"answer": answers.REFUSAL, "sources": []}
        if state.get("busy"):
            return {"answer": answers.BUSY, "sources": []}
        if intent == "rca":
            passages = state.get("passages", [])
            evidence = state.get("evidence")
            sources = answers.passage_sources(passages)
            if evidence is not None:
                sources += [f"template:{row[0]}" for row in evidence.rows if f"template:{row[0]}" not in sources]
            quotes = any(p.kind != "runbook" for p in passages) or answers.quotes_log_text(plan, evidence)
            return {"answer": answers.describe_passages(passages, evidence, plan), "sources": sources,
                    "quotes_logs": quotes}
        result = state.get("result")
        if plan is not None and plan.shape in ("not_found", "ambiguous"):
            return {"answer": plan.description, "sources": []}
        if result is None:
            reason = state.get("feedback") or state.get("error") or "no query could be planned"
            return {"answer": f"I could not answer that from the logs ({reason}).", "sources": []}
        if plan.shape == "changed":
            text = describe_changes(state["parsed"], state["snapshot"].now, result.columns, result.rows)
        else:
            text = answers.describe_result(plan, result)
        if state.get("feedback"):
            text += f"\n(Note: {state['feedback']}.)"
        parsed = state["parsed"]
        time_range = parsed.time.range if parsed.time else None
        cold = answers.cold_storage_note(state["snapshot"].cold, parsed.entities.services,
                                         time_range and time_range.start, time_range and time_range.end)
        if cold:
            text += f"\n{cold}"
        sources = []
        if "template_id" in result.columns:
            index = result.columns.index("template_id")
            sources = [f"template:{row[index]}" for row in result.rows]
        return {"answer": text, "sources": sources, "quotes_logs": answers.quotes_log_text(plan, result)}

    def after_classify(state: AgentState) -> str:
        return "respond" if state["intent"] == "out_of_scope" else "plan"

    def after_plan(state: AgentState) -> str:
        return "act" if state["planned"] else "respond"

    def after_observe(state: AgentState) -> str:
        return "plan" if state.get("feedback") and state["strategies"] else "respond"

    graph = StateGraph(AgentState)
    graph.add_node("classify", classify_node)
    graph.add_node("plan", plan_node)
    graph.add_node("act", act_node)
    graph.add_node("observe", observe_node)
    graph.add_node("respond", respond_node)
    graph.add_edge(START, "classify")
    graph.add_conditional_edges("classify", after_classify, {"plan": "plan", "respond": "respond"})
    graph.add_conditional_edges("plan", after_plan, {"act": "act", "respond": "respond"})
    graph.add_edge("act", "observe")
    graph.add_conditional_edges("observe", after_observe, {"plan": "plan", "respond": "respond"})
    graph.add_edge("respond", END)
    return graph.compile()
