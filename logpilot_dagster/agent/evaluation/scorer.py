"""Scores for an evaluation run: intent accuracy, execution accuracy, retrieval hit@k, latency percentiles.

Execution accuracy compares result sets as Spider/BIRD do: the multiset of rows, order-insensitive unless the
gold SQL has a top-level ORDER BY; columns may come in any order (the best column permutation is used), values
are normalised (floats to 6 significant digits, dates to ISO text).
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import sqlglot
from sklearn.metrics import accuracy_score, classification_report

from logpilot_dagster.agent.answer import AMBIGUOUS, NOT_FOUND
from logpilot_dagster.agent.evaluation.runner import Outcome
from logpilot_dagster.agent.intent import INTENTS

TARGETS = {"intent_accuracy": 0.95, "execution_accuracy": 0.85, "latency_p95_ms": 500.0}
HIT_K = 5


def _norm(value):
    if isinstance(value, (float, Decimal)):
        return float(f"{float(value):.6g}")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, list):
        return tuple(_norm(v) for v in value)
    return value


def ordered(sql: str) -> bool:
    """Whether the outermost query of ``sql`` has an ORDER BY."""
    return sqlglot.parse_one(sql, read="duckdb").args.get("order") is not None


def same_results(pred: list[tuple], gold: list[tuple], respect_order: bool) -> bool:
    """Result-set equality, trying every column permutation of ``pred`` (up to 6 columns; wider results must
    list their columns in the gold order)."""
    pred = [tuple(_norm(v) for v in row) for row in pred]
    gold = [tuple(_norm(v) for v in row) for row in gold]
    if len(pred) != len(gold):
        return False
    if not gold:
        return True
    width = len(gold[0])
    if len(pred[0]) != width:
        return False
    orders = itertools.permutations(range(width)) if width <= 6 else [tuple(range(width))]
    for permutation in orders:
        candidate = [tuple(row[i] for i in permutation) for row in pred]
        if (candidate == gold) if respect_order else (Counter(candidate) == Counter(gold)):
            return True
    return False


def execution_match(outcome: Outcome) -> bool:
    if outcome.error or not outcome.item.gold_sql:
        return False
    return same_results(outcome.rows, outcome.gold_rows, ordered(outcome.item.gold_sql))


def retrieval_hit(outcome: Outcome, k: int = HIT_K) -> bool:
    """Whether a gold source (runbook path, compared by its tail) is among the first ``k`` sources."""
    found = outcome.sources[:k]
    return any(s == g or s.endswith("/" + g) or g.endswith("/" + s) for g in outcome.item.gold_sources for s in found)


def answer_match(outcome: Outcome) -> bool:
    """A ``gold_answer`` item: a refusal, or a "not found" / "ambiguous" answer that returned no rows."""
    gold = outcome.item.gold_answer
    if gold == "refusal":
        return outcome.intent == "out_of_scope"
    marker = {"not_found": NOT_FOUND, "ambiguous": AMBIGUOUS}.get(gold)
    return bool(marker) and outcome.answer.startswith(marker) and not outcome.rows


def correct(outcome: Outcome) -> bool:
    """Strictly right: the gold result set, the gold kind of non-answer, or a gold source in the top k."""
    if outcome.item.gold_sql:
        return execution_match(outcome)
    if outcome.item.gold_answer:
        return answer_match(outcome)
    return retrieval_hit(outcome)


def score(outcomes: list[Outcome]) -> dict:
    """The report as a JSON-ready dict (overall, per intent, per difficulty, failures)."""
    gold_intents = [o.item.intent for o in outcomes]
    predicted = [o.intent for o in outcomes]
    sql_items = [o for o in outcomes if o.item.gold_sql]
    rag_items = [o for o in outcomes if o.item.gold_sources]
    latencies = np.array([o.latency_ms for o in outcomes]) if outcomes else np.array([0.0])
    report = {
        "questions": len(outcomes),
        "intent_accuracy": round(accuracy_score(gold_intents, predicted), 4) if outcomes else 0.0,
        "intent_report": classification_report(
            gold_intents, predicted, labels=list(INTENTS), output_dict=True, zero_division=0
        ),
        "execution_accuracy": round(sum(map(execution_match, sql_items)) / len(sql_items), 4) if sql_items else None,
        "sql_questions": len(sql_items),
        f"retrieval_hit@{HIT_K}": round(sum(map(retrieval_hit, rag_items)) / len(rag_items), 4) if rag_items else None,
        "rag_questions": len(rag_items),
        "latency_p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "latency_p95_ms": round(float(np.percentile(latencies, 95)), 1),
        "accuracy": round(sum(map(correct, outcomes)) / len(outcomes), 4) if outcomes else None,
        "by_family": {},
        "by_difficulty": {},
        "failures": [],
    }
    for family in sorted({o.item.family for o in outcomes}):
        group = [o for o in outcomes if o.item.family == family]
        report["by_family"][family] = {
            "questions": len(group),
            "intent_accuracy": round(sum(o.intent == o.item.intent for o in group) / len(group), 4),
            "accuracy": round(sum(map(correct, group)) / len(group), 4),
        }
    for difficulty in sorted({o.item.difficulty for o in outcomes}):
        group = [o for o in outcomes if o.item.difficulty == difficulty]
        sql_group = [o for o in group if o.item.gold_sql]
        report["by_difficulty"][difficulty] = {
            "questions": len(group),
            "intent_accuracy": round(sum(o.intent == o.item.intent for o in group) / len(group), 4),
            "execution_accuracy": round(sum(map(execution_match, sql_group)) / len(sql_group), 4)
            if sql_group
            else None,
        }
    for o in outcomes:
        problems = []
        if o.intent != o.item.intent:
            problems.append(f"intent {o.intent} != {o.item.intent}")
        if o.item.gold_sql and not execution_match(o):
            problems.append("result set differs" + (f" ({o.error})" if o.error else ""))
        if o.item.gold_answer and o.item.gold_answer != "refusal" and not answer_match(o):
            problems.append(f"expected a {o.item.gold_answer} answer")
        if o.item.gold_sources and not retrieval_hit(o):
            problems.append(f"no gold source in top {HIT_K}: {o.sources[:HIT_K]}")
        if problems:
            report["failures"].append(
                {"id": o.item.id, "question": o.item.question, "problems": problems, "sql": o.sql}
            )
    report["targets"] = {name: _meets(name, report[name], goal) for name, goal in TARGETS.items()}
    return report


def _meets(name: str, value, goal: float) -> bool:
    if value is None:
        return True
    return value <= goal if name.startswith("latency") else value >= goal


def to_markdown(report: dict) -> str:
    """A readable summary of :func:`score`'s report."""
    hit = f"retrieval_hit@{HIT_K}"
    targets, met = TARGETS, report["targets"]
    lines = [
        "# LogPilot agent evaluation",
        "",
        f"Questions: {report['questions']} (SQL-scored: {report['sql_questions']}, "
        f"RAG-scored: {report['rag_questions']})",
        "",
        "| metric | value | target | met |",
        "| --- | --- | --- | --- |",
        f"| intent accuracy | {report['intent_accuracy']} | >= {targets['intent_accuracy']} "
        f"| {met['intent_accuracy']} |",
        f"| SQL execution accuracy | {report['execution_accuracy']} | >= {targets['execution_accuracy']} "
        f"| {met['execution_accuracy']} |",
        f"| {hit} | {report[hit]} | - | - |",
        f"| strict accuracy (all questions) | {report['accuracy']} | - | - |",
        f"| latency p50 (ms) | {report['latency_p50_ms']} | - | - |",
        f"| latency p95 (ms) | {report['latency_p95_ms']} | <= {targets['latency_p95_ms']} | {met['latency_p95_ms']} |",
        "",
        "## Per intent",
        "",
        "| intent | precision | recall | f1 | support |",
        "| --- | --- | --- | --- | --- |",
    ]
    for intent in INTENTS:
        row = report["intent_report"][intent]
        lines.append(
            f"| {intent} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1-score']:.3f} "
            f"| {int(row['support'])} |"
        )
    lines += [
        "",
        "## Per family (strict: the gold result set, refusal, not-found/ambiguous answer or hit@5)",
        "",
        "| family | questions | intent accuracy | accuracy |",
        "| --- | --- | --- | --- |",
    ]
    for name, row in report["by_family"].items():
        lines.append(f"| {name} | {row['questions']} | {row['intent_accuracy']} | {row['accuracy']} |")
    lines += [
        "",
        "## Per difficulty",
        "",
        "| difficulty | questions | intent accuracy | execution accuracy |",
        "| --- | --- | --- | --- |",
    ]
    for name, row in report["by_difficulty"].items():
        lines.append(f"| {name} | {row['questions']} | {row['intent_accuracy']} | {row['execution_accuracy']} |")
    lines += ["", f"## Failures ({len(report['failures'])})", ""]
    for failure in report["failures"]:
        lines.append(f"- `{failure['id']}` {failure['question']} — {'; '.join(failure['problems'])}")
    return "\n".join(lines) + "\n"


def write_report(report: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """``report.json`` and ``report.md`` under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "report.json", out / "report.md"
    json_path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    md_path.write_text(to_markdown(report), encoding="utf-8")
    return json_path, md_path
