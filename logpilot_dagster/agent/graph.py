"""The query agent as a LangGraph state machine: classify -> plan -> act -> observe (-> plan ...) -> respond.

``observe`` feeds a SQL error, an empty result, or an implausible value back to ``plan``, which moves on to
the next strategy (LLM draft -> exact phrase -> word stems -> template vectors); at most ``MAX_RETRIES``
retries. Log content only ever reaches the answer text: plans are made from the question alone.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Callable, TypedDict

import duckdb
from langgraph.graph import END, START, StateGraph

from logpilot_dagster.agent import answer as answers
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

MAX_RETRIES = 2
OFFLINE_STRATEGIES = {
    "metrics": ("phrase", "stems"),
    "search": SEARCH_STRATEGIES,
    "catalog": ("slots",),
    "rca": ("rag",),
    "out_of_scope": (),
}


@dataclass(frozen=True)
class Snapshot:
    """What the planner needs from the warehouse, read once per question."""

    now: datetime
    resolver: Resolver
    templates: list[str]
    coverage: tuple[datetime | None, datetime | None] | None = None  # first and last event time in ``logs``


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
    feedback: str | None
    passages: list[Any]
    evidence: QueryResult | None
    answer: str
    sources: list[str]
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


def _implausible(plan: Plan, result: QueryResult, parsed: ParsedQuestion) -> str | None:
    """Why a result should not be trusted, or ``None``."""
    if plan.strategy == "llm":
        missing = [s for s in parsed.entities.services + parsed.entities.levels if s not in (plan.sql or "")]
        if missing:
            return f"the draft ignores {missing}"
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
        intent, confidence = classify(parsed)
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
            draft = tools.backend.draft_sql(state["question"], _hints(parsed), state.get("feedback"))
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
        except (GuardError, duckdb.Error) as exc:
            return {
                **updates,
                "error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}",
                "trace": [f"act: {type(exc).__name__}: {exc}"],
            }
        key = "evidence" if state["intent"] == "rca" else "result"
        return {**updates, key: result, "trace": [f"act: {len(result.rows)} row(s) in {result.elapsed_ms:.0f} ms"]}

    def observe_node(state: AgentState) -> dict:
        plan, result = state.get("plan"), state.get("result")
        problem = state.get("error")
        if problem is None and plan is not None and result is not None:
            problem = _implausible(plan, result, state["parsed"])
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
        if intent == "rca":
            passages = state.get("passages", [])
            evidence = state.get("evidence")
            sources = list(dict.fromkeys(p.source for p in passages))
            if evidence is not None:
                sources += [f"template:{row[0]}" for row in evidence.rows if f"template:{row[0]}" not in sources]
            return {"answer": answers.describe_passages(passages, evidence, plan), "sources": sources}
        result = state.get("result")
        if plan is not None and plan.shape in ("not_found", "ambiguous"):
            return {"answer": plan.description, "sources": []}
        if result is None:
            reason = state.get("feedback") or state.get("error") or "no query could be planned"
            return {"answer": f"I could not answer that from the logs ({reason}).", "sources": []}
        text = answers.describe_result(plan, result)
        if state.get("feedback"):
            text += f"\n(Note: {state['feedback']}.)"
        sources = []
        if "template_id" in result.columns:
            index = result.columns.index("template_id")
            sources = [f"template:{row[index]}" for row in result.rows]
        return {"answer": text, "sources": sources}

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
