"""The same backfill on both storage profiles gives the same warehouse: row counts per service, year and level,
the golden set's gold SQL results, and the agent's answers (through its read-only sandbox)."""

from datetime import datetime

import pytest

from logpilot_dagster.agent.client import LogPilotClient
from logpilot_dagster.agent.evaluation.runner import load_golden
from logpilot_dagster.agent.guard import check_sql, run_query
from logpilot_dagster.settings import SHIPPED_DATA, LogPilotPaths
from logpilot_dagster.storage.warehouse import connect
from logpilot_dagster_tests.pipeline import build_home

pytestmark = pytest.mark.lake

YEARS = (2022, 2023, 2024)
AGENT_QUESTIONS = ("How many ERROR lines did payments-api log in 2023?", "Total lines stored for search-indexer?",
                   "Who owns checkout-web?")


def _normal(value):
    return round(value, 9) if isinstance(value, float) else value


def _warehouse_facts(paths: LogPilotPaths) -> dict:
    """Counts per service/year/level and every gold SQL result (sorted, floats rounded)."""
    facts = {}
    with connect(paths.db_path, read_only=True) as con:
        facts["counts"] = con.execute("SELECT service, year, level, count(*) FROM logs GROUP BY ALL "
                                      "ORDER BY ALL").fetchall()
        facts["quarantine"] = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        facts["templates"] = con.execute("SELECT template_id, count FROM templates ORDER BY ALL").fetchall()
        for item in load_golden():
            if item.gold_sql:
                rows = con.execute(check_sql(item.gold_sql)).fetchall()
                facts[item.id] = sorted((tuple(_normal(v) for v in row) for row in rows), key=repr)
    return facts


def _agent_facts(paths: LogPilotPaths) -> dict:
    client = LogPilotClient(paths.db_path, paths.chroma_dir, SHIPPED_DATA / "runbooks", now=datetime(2025, 1, 1))
    facts = {q: client.ask(q).answer for q in AGENT_QUESTIONS}
    facts["logs_all"] = run_query(paths.db_path, "SELECT service, count(*) AS n FROM logs_all GROUP BY 1 "
                                                 "ORDER BY 1").rows
    return facts


def test_embedded_and_lake_hold_the_same_rows_and_give_the_same_answers(lake_home, tmp_path, monkeypatch):
    build_home(lake_home.home, YEARS, lines=3_000)
    lake = _warehouse_facts(lake_home), _agent_facts(lake_home)
    monkeypatch.setenv("LOGPILOT_PROFILE", "embedded")
    embedded_home = LogPilotPaths.from_env(tmp_path / "embedded")
    build_home(embedded_home.home, YEARS, lines=3_000)
    embedded = _warehouse_facts(embedded_home), _agent_facts(embedded_home)
    assert embedded_home.db_path.exists() and not (lake_home.db_path.exists())
    assert {y for _, y, _, _ in lake[0]["counts"]} == set(YEARS)
    assert lake[0] == embedded[0]
    assert lake[1] == embedded[1]
    assert lake[1]["logs_all"] and all(any(c.isdigit() for c in lake[1][q]) for q in AGENT_QUESTIONS[:2])
