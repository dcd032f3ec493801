"""The agent's change questions (unusual / what changed / cost) over the template analytics tables, on a small
warehouse built here: each answer cites template ids, counts and the runbook found."""

from __future__ import annotations


import duckdb
import pytest

from logpilot_dagster.agent import LogPilotClient
from logpilot_dagster.settings import SHIPPED_DATA
from logpilot_dagster.storage.warehouse import ensure_schema


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("changes")
    con = duckdb.connect(str(root / "logs.duckdb"))
    ensure_schema(con)
    con.execute("INSERT INTO system_catalog VALUES ('pay', 'Payments', 'x@example.com', 'critical'), "
                "('web', 'Web', 'y@example.com', 'low')")
    con.execute("INSERT INTO logs VALUES ('e1', '2025-03-02 12:00:00', 'pay', 'ERROR', 'tB', 'b 1', [], 'f', 0, 2025,"
                " NULL), ('e0', '2025-03-01 01:00:00', 'pay', 'INFO', 'tA', 'a 1', [], 'f', 1, 2025, NULL)")
    con.execute("INSERT INTO templates VALUES ('tA', 'a <*>', 'pay', NULL, NULL, 0), "
                "('tB', 'b <*>', 'pay', NULL, NULL, 0), ('tC', 'c <*>', 'web', NULL, NULL, 0)")
    con.execute("""INSERT INTO template_hourly VALUES
        ('backfill:2025', 'tA', 'pay', '2025-03-01 01:00:00', 10, 0, 1000),
        ('backfill:2025', 'tC', 'web', '2025-03-01 02:00:00', 5, 0, 9000),
        ('backfill:2025', 'tA', 'pay', '2025-03-02 01:00:00', 80, 0, 8000),
        ('live', 'tB', 'pay', '2025-03-02 12:00:00', 7, 7, 700)""")
    con.execute("INSERT INTO template_events VALUES ('new_template', 'tB', 'pay', '2025-03-02 12:00:00', "
                "'2025-03-02 12:00:00', 7, 0, NULL, 'critical', 'b 1', 'payments-api-card-declines.md', 'first', now())")
    con.close()
    return LogPilotClient(root / "logs.duckdb", root / "chroma", SHIPPED_DATA / "runbooks")


def test_unusual_since_yesterday_cites_template_count_and_runbook(client):
    answer = client.ask("What is unusual in pay since yesterday?")
    assert answer.intent == "changes"
    assert [(r["kind"], r["template_id"], r["observed"]) for r in answer.rows] == [("new_template", "tB", 7.0)]
    assert "payments-api-card-declines.md" in answer.answer and "template:tB" in answer.sources


def test_what_changed_between_two_days(client):
    answer = client.ask("What changed between 2025-03-01 and 2025-03-02?")
    assert answer.intent == "changes"
    assert "new in B: 1" in answer.answer and "tB pay: 7 lines" in answer.answer
    assert "gone since A: 1" in answer.answer and "tC web" in answer.answer
    assert "tA pay: 0.417 -> 3.33 (10 -> 80 lines)" in answer.answer


def test_which_templates_cost_the_most_bytes(client):
    answer = client.ask("Which 2 templates cost the most bytes?")
    assert [(r["template_id"], r["bytes"]) for r in answer.rows] == [("tA", 9000), ("tC", 9000)]
    by_service = client.ask("Which services cost the most bytes?")
    assert [(r["service"], r["bytes"]) for r in by_service.rows] == [("pay", 9700), ("web", 9000)]


def test_other_questions_keep_their_intent(client):
    assert client.ask("How many ERROR lines did pay log in 2025?").intent == "metrics"
    assert client.ask("How much does an H100 cost?").intent == "out_of_scope"

