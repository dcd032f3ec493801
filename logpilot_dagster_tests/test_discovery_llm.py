"""The LLM as a second format proposer, against a real HTTP server on loopback standing in for the
OpenAI-compatible endpoint: its candidates pass the same validator, PII never reaches it, and a bad or slow
endpoint leaves discovery with the offline proposal."""

import json
import logging
import random

import pyarrow as pa
import pytest

from logpilot_dagster.defs import discovery as discovery_defs
from logpilot_dagster.defs.resources import LogPilotHome
from logpilot_dagster.discovery.llm_proposer import MAX_LINE_CHARS, LLMProposer, proposer_from_env, sample_for_prompt
from logpilot_dagster.discovery.propose import discover, split_samples
from logpilot_dagster.discovery.service import run_discovery
from logpilot_dagster.llm import OpenAICompatibleChat
from logpilot_dagster.privacy.pii import default_masker
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.warehouse import connect, ensure_schema
from logpilot_dagster_tests.test_discovery import app_lines

GOOD = {"format": "regex", "ts_layout": "%Y.%m.%d@%H:%M:%S",
        "regex": r"^(?P<Timestamp>\d{4}\.\d{2}\.\d{2}@\d{2}:\d{2}:\d{2}) <(?P<Level>[A-Z]+)> "
                 r"(?P<Component>[\w-]+): (?P<Content>.*?)\s*$"}


def odd_lines(n: int = 300) -> list[str]:
    """A header whose time layout (``2024.03.05@10:11:12``) is in no offline library; every line has an email
    address and an IP address."""
    rnd = random.Random(3)
    return [f"2024.03.{1 + i % 28:02d}@10:{i % 60:02d}:{rnd.randint(0, 59):02d} <{rnd.choice(['INFO', 'WARN'])}> "
            f"worker-{rnd.randint(1, 4)}: login {rnd.choice(['ok', 'failed', 'retried'])} for user{i}@example.com "
            f"from 172.16.{i % 200}.{rnd.randint(1, 254)}" for i in range(n)]


def proposer(server, timeout_s: float = 20.0) -> LLMProposer:
    return LLMProposer(OpenAICompatibleChat(f"http://127.0.0.1:{server.server_port}/v1", "test-model", "k",
                                            timeout_s))


def test_without_llm_settings_discovery_is_offline(monkeypatch):
    monkeypatch.delenv("LOGPILOT_LLM_BASE_URL", raising=False)
    monkeypatch.setenv("LOGPILOT_LLM_MODEL", "m")
    assert proposer_from_env() is None
    assert not discover(odd_lines()).accepted  # offline, this layout has no candidate


def test_a_good_llm_candidate_is_validated_and_recorded_as_proposed_by_the_model(tmp_path, monkeypatch, llm_server):
    monkeypatch.setenv("LOGPILOT_LLM_BASE_URL", f"http://127.0.0.1:{llm_server.server_port}/v1")
    monkeypatch.setenv("LOGPILOT_LLM_MODEL", "test-model")
    llm_server.reply = "```json\n" + json.dumps(GOOD) + "\n```"
    lines = odd_lines()
    log = tmp_path / "auth.log"
    log.write_text("\n".join(lines) + "\n")
    paths = LogPilotPaths.from_env(tmp_path / "home").ensure()

    outcome = run_discovery(paths, str(log), accept_by="tester")

    assert outcome.found.accepted, outcome.found.explain()
    assert outcome.found.candidate.proposed_by == "llm:test-model"
    assert outcome.found.validation.scores["match_rate"] == 1.0
    assert "by       llm:test-model" in outcome.report()
    with connect(paths.db_path, read_only=True) as con:
        versions = con.execute("SELECT rule_id, proposed_by, status FROM format_rule_versions").fetchall()
    assert versions == [("auth@v1", "llm:test-model", "accepted")]
    parsed = outcome.found.candidate.header_format().parse(pa.array(lines[:3]), None)
    assert parsed.content.to_pylist()[0] == lines[0].split(": ", 1)[1]

    # The model saw only masked lines of the proposal half, never an address of any sample.
    [request] = llm_server.requests
    sent = json.loads(request["messages"][1]["content"].split("\n", 1)[1])
    proposal_half, _ = split_samples(lines)
    masked = {default_masker().mask(line) for line in proposal_half}
    assert 0 < len(sent) <= 30 and set(sent) <= masked
    assert all("<EMAIL_REDACTED>" in s and "<IP_REDACTED>" in s for s in sent)
    assert b"example.com" not in llm_server.raw_requests[0] and b"172.16." not in llm_server.raw_requests[0]


def test_a_long_line_is_masked_before_it_is_cut():
    line = "a " * (MAX_LINE_CHARS // 2 - 3) + "bob.smith@example.com logged in"  # the address straddles the cut
    [sent] = sample_for_prompt([line])
    assert len(sent) <= MAX_LINE_CHARS and "bob" not in sent


@pytest.mark.parametrize("regex, reason", [
    # nested quantifier, back-reference and look-ahead: RE2 refuses it before it touches a line
    (r"^(?P<Timestamp>(?:\S+)+)\1(?=<) <(?P<Level>\w+)> (?P<Component>\S+): (?P<Content>.*)$",
     "does not compile in RE2"),
    # a greedy component takes the message, leaving one word as content
    (r"^(?P<Timestamp>\S+) <(?P<Level>\w+)> (?P<Component>.*) (?P<Content>\S+)$",
     "header field 'Component' swallows content"),
])
def test_a_bad_llm_candidate_is_rejected_by_the_validator_with_reasons(llm_server, regex, reason):
    llm_server.reply = json.dumps({**GOOD, "regex": regex})
    found = discover(odd_lines(), None, proposer(llm_server))
    assert not found.accepted
    assert found.candidate.proposed_by == "llm:test-model"
    assert reason in found.explain(), found.explain()


def test_the_offline_proposal_still_runs_and_wins_over_a_rejected_llm_one(tmp_path, monkeypatch, llm_server):
    monkeypatch.setenv("LOGPILOT_LLM_BASE_URL", f"http://127.0.0.1:{llm_server.server_port}/v1")
    monkeypatch.setenv("LOGPILOT_LLM_MODEL", "test-model")
    llm_server.reply = json.dumps({**GOOD, "regex": r"^(?P<Timestamp>\S+ \S+) (?P<Content>.*)$"})
    log = tmp_path / "payments.log"
    log.write_text("\n".join(app_lines(300)) + "\n")
    outcome = run_discovery(LogPilotPaths.from_env(tmp_path / "home").ensure(), str(log))
    assert outcome.found.accepted and outcome.found.candidate.proposed_by == "offline:header"
    assert "also     llm:test-model REJECTED: timestamp parses on 0.0%" in outcome.report()


@pytest.mark.parametrize("payload, reply", [
    ("<html>bad gateway</html>", None),
    ('{"choices": []}', None),
    ('{"choices": [{"message": {"content": "' + "x" * 1_000_000 + '"}}]}', None),  # over the reply cap
    (None, "Sure! Here is the format: a timestamp, then the level."),
    (None, "[" * 100_000),
    (None, '["regex", "^(?P<Content>.*)$"]'),
    (None, json.dumps({**GOOD, "regex": "^" + "(?P<Timestamp>a)" * 500 + "(?P<Content>.*)$"})),  # too long
    (None, json.dumps({**GOOD, "regex": r"^(?P<Timestamp>\S+) (?P<message>.*)$"})),  # no Content group
    (None, json.dumps({**GOOD, "ts_layout": "%Y'); DROP TABLE logs; --"})),  # would end up in SQL
    (None, json.dumps({"format": "jsonl", "ts_layout": "%Y", "keys": {"ts": "t", "message": "m", "evil": "x"}})),
    (None, json.dumps({"format": "yaml"})),
])
def test_garbage_from_the_llm_leaves_the_offline_proposal(llm_server, caplog, payload, reply):
    llm_server.payload, llm_server.reply = payload, reply
    with caplog.at_level(logging.WARNING, logger="logpilot_dagster.discovery.llm_proposer"):
        found = discover(app_lines(300), 2022, proposer(llm_server))
    assert found.accepted and found.candidate.proposed_by == "offline:header"
    assert not found.rejected
    [record] = [r for r in caplog.records if r.name == "logpilot_dagster.discovery.llm_proposer"]
    assert "proposed no format candidate" in record.getMessage()


def test_a_trickling_llm_server_cannot_hold_discovery(llm_server, caplog):
    llm_server.reply, llm_server.trickle = json.dumps(GOOD), "body"
    with caplog.at_level(logging.WARNING, logger="logpilot_dagster.discovery.llm_proposer"):
        found = discover(app_lines(300), 2022, proposer(llm_server, timeout_s=1.0))
    assert found.accepted and found.candidate.proposed_by == "offline:header"
    assert "no complete answer within 1 s" in caplog.text


def test_the_live_discovery_job_asks_the_configured_llm(tmp_path, monkeypatch, llm_server):
    monkeypatch.setenv("LOGPILOT_LLM_BASE_URL", f"http://127.0.0.1:{llm_server.server_port}/v1")
    monkeypatch.setenv("LOGPILOT_LLM_MODEL", "test-model")
    llm_server.reply = json.dumps(GOOD)
    paths = LogPilotPaths.from_env(tmp_path).ensure()
    with connect(paths.db_path) as con:
        ensure_schema(con)
        con.execute("INSERT INTO discovery_queue SELECT 'auth', 'logpilot.raw/0', o, raw, 'unknown_source', now() "
                    "FROM (SELECT unnest(range(200)) AS o, unnest(?::VARCHAR[]) AS raw)",
                    [[default_masker().mask(line) for line in odd_lines(200)]])  # the live sink queues masked lines
    resources = {"logpilot": LogPilotHome(home=str(paths.home)),
                 "discovery": discovery_defs.SchemaDiscovery(auto_accept=True)}
    result = discovery_defs.discover_live_source.execute_in_process(
        run_config={"ops": {"discover_source_rule": {"config": {"source_name": "auth"}}}}, resources=resources)
    assert result.output_for_node("discover_source_rule") == {"rule_id": "auth@v1", "accepted": True}
    with connect(paths.db_path, read_only=True) as con:
        assert con.execute("SELECT proposed_by, accepted_by FROM format_rule_versions").fetchall() == [
            ("llm:test-model", "auto")]
    assert len(llm_server.requests) == 1
