"""``logpilot ask`` and ``logpilot evaluate``: plug into the ``logpilot`` argparse CLI with :func:`register`."""

from __future__ import annotations

import argparse
import json
from datetime import datetime

from logpilot_dagster.settings import LogPilotPaths


def _client(args: argparse.Namespace, now: datetime | None = None):
    from logpilot_dagster.agent.client import LogPilotClient

    paths = LogPilotPaths.from_env(getattr(args, "home", None))
    return LogPilotClient(paths.db_path, paths.chroma_dir, paths.runbooks_dir, now=now)


def cmd_ask(args: argparse.Namespace) -> int:
    answer = _client(args, datetime.fromisoformat(args.now) if args.now else None).ask(args.question)
    if args.json:
        payload = {
            k: getattr(answer, k)
            for k in ("question", "answer", "intent", "sql", "columns", "rows", "sources", "latency_ms", "quotes_logs")
        }
        print(json.dumps(payload, indent=2, default=str))
        return 0
    print(answer.answer)
    if answer.sql:
        print(f"\nSQL: {answer.sql}")
    if answer.sources:
        print(f"Sources: {', '.join(answer.sources)}")
    print(f"[{answer.intent}, {answer.latency_ms:.0f} ms]")
    if args.trace:
        print("\n".join(answer.trace))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from logpilot_dagster.agent.evaluation.runner import GOLDEN_DIR, load_golden, run
    from logpilot_dagster.agent.evaluation.scorer import score, write_report

    paths = LogPilotPaths.from_env(getattr(args, "home", None))
    items = load_golden(args.golden or GOLDEN_DIR)
    report = score(run(_client(args), items))
    json_path, md_path = write_report(report, args.out or paths.home / "evaluation")
    print(
        f"{report['questions']} questions: intent accuracy {report['intent_accuracy']}, SQL execution accuracy "
        f"{report['execution_accuracy']}, strict accuracy {report['accuracy']}, retrieval hit@5 {report['retrieval_hit@5']}, "
        f"latency p50 {report['latency_p50_ms']} ms / p95 {report['latency_p95_ms']} ms"
    )
    for family, row in report["by_family"].items():
        print(f"  {family:<14} {row['questions']:>4} questions  accuracy {row['accuracy']:.3f}")
    print(f"report: {md_path} and {json_path}")
    return 0 if all(report["targets"].values()) else 1


def register(subparsers) -> None:
    """Add the ``ask`` and ``evaluate`` subcommands (each sets ``func(args) -> int``)."""
    p = subparsers.add_parser("ask", help="ask the query agent a question about the logs")
    p.add_argument("question")
    p.add_argument("--now", help="reference time for 'last week' etc. (ISO; default: latest log timestamp)")
    p.add_argument("--json", action="store_true", help="print the full answer as JSON")
    p.add_argument("--trace", action="store_true", help="print the agent's steps")
    p.set_defaults(func=cmd_ask)

    p = subparsers.add_parser("evaluate", help="score the agent on the golden question sets")
    p.add_argument("--golden", help="a golden *.jsonl file or a directory of them (default: the shipped data/golden)")
    p.add_argument("--out", help="report directory (default: $LOGPILOT_HOME/evaluation)")
    p.set_defaults(func=cmd_evaluate)
