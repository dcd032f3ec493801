"""Schema discovery: proposer, validator (accept and reject), JSON lines / logfmt key mapping, the registry, and
the re-parse of parked lines after a rule lands (exactly once), all on real DuckDB and real Dagster runs."""

import csv
import json
import random
import sys
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from logpilot_dagster.defs import discovery as discovery_defs
from logpilot_dagster.defs.resources import LogPilotHome
from logpilot_dagster.discovery.propose import discover
from logpilot_dagster.discovery.samples import publish_queue_counts
from logpilot_dagster.discovery.service import run_discovery
from logpilot_dagster.discovery.validate import Candidate, validate
from logpilot_dagster.ingest.sources import load_sources
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.warehouse import connect, ensure_schema
from logpilot_dagster_tests.pipeline import materialize_year

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # Loghub metrics, shared

LEVELS = ("INFO", "WARN", "ERROR", "DEBUG")
WORDS = ("charge", "refund", "user", "declined", "accepted", "retry", "timeout", "card", "queue", "batch")


def app_lines(n: int, seed: int = 1, year: int = 2022) -> list[str]:
    """An in-house format no declared source knows: time, [thread], level, logger - message."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        words = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(2, 6)))
        out.append(f"{year}-03-{1 + i % 28:02d} 10:{i % 60:02d}:{rnd.randint(0, 59):02d}.{rnd.randint(0, 999):03d} "
                   f"[worker-{rnd.randint(1, 8)}] {rnd.choice(LEVELS):<5} payments.{rnd.choice(('Api', 'Db'))} - "
                   f"{words} {rnd.randint(1, 99999)}")
    return out


def content_of(line: str) -> str:
    return line.split(" - ", 1)[1]


def test_discovery_proposes_a_header_rule_that_extracts_the_content():
    lines = app_lines(400)
    found = discover(lines, 2022)
    assert found.accepted, found.explain()
    assert found.candidate.format.startswith("regex:")
    assert found.candidate.ts_layout == "%Y-%m-%d %H:%M:%S.%f"
    parsed = found.candidate.header_format().parse(pa.array(lines), 2022)
    assert parsed.content.to_pylist() == [content_of(line) for line in lines]
    assert set(parsed.component.to_pylist()) == {"payments.Api", "payments.Db"}
    assert set(parsed.level.to_pylist()) <= set(LEVELS)
    assert found.validation.scores["match_rate"] == 1.0


def test_validator_rejects_a_rule_that_misses_held_out_lines():
    lines = app_lines(200)
    narrow = Candidate(r"regex:^(?P<Timestamp>\S+ \S+) \[(?P<Thread>worker-[1-4])\] (?P<Content>.*)$",
                       "%Y-%m-%d %H:%M:%S.%f")
    result = validate(narrow, lines, 2022)
    assert not result.accepted
    assert any("full-matches" in r for r in result.reasons)


def test_validator_rejects_what_re2_cannot_compile_and_survives_a_backtracking_candidate():
    lines = app_lines(100)
    backref = Candidate(r"regex:^(?P<Timestamp>\S+ \S+) (?P<Content>(\w+) \3.*)$", "%Y-%m-%d %H:%M:%S.%f")
    result = validate(backref, lines, 2022)
    assert not result.accepted and "does not compile in RE2" in result.reasons[0]
    lookahead = Candidate(r"regex:^(?P<Timestamp>\S+ \S+) (?=\[)(?P<Content>.*)$", "%Y-%m-%d %H:%M:%S.%f")
    assert "does not compile in RE2" in validate(lookahead, lines, 2022).reasons[0]
    # (\w+\s?)*! is exponential for a backtracking engine on a long run of words without "!"; RE2 is linear.
    evil = Candidate(r"regex:^(?P<Timestamp>\S+ \S+) (?P<Content>(?:\w+\s?)*!)$", "%Y-%m-%d %H:%M:%S.%f")
    pathological = ["2022-03-01 10:00:00.000 " + "a" * 30 + " " + "ab " * 20_000] * 50
    result = validate(evil, pathological, 2022)
    assert not result.accepted
    assert result.scores["match_rate"] == 0.0


def test_validator_rejects_a_content_swallowing_rule():
    lines = app_lines(200)
    greedy = Candidate(r"regex:^(?P<Timestamp>\S+ \S+) (?P<Component>.*) (?P<Content>\S+)$", "%Y-%m-%d %H:%M:%S.%f")
    result = validate(greedy, lines, 2022)
    assert not result.accepted
    assert any("'Component' swallows content" in r for r in result.reasons)
    empty = Candidate(r"regex:^(?P<Timestamp>\S+ \S+) (?P<Component>.*)(?P<Content>)$", "%Y-%m-%d %H:%M:%S.%f")
    reasons = validate(empty, lines, 2022).reasons
    assert any("content is empty" in r for r in reasons)
    assert any("content never varies" in r for r in reasons)


def test_validator_rejects_an_unparseable_timestamp():
    lines = [line.replace("2022-03-", "2022-13-") for line in app_lines(100)]
    bad = Candidate(r"regex:^(?P<Timestamp>\S+ \S+) (?P<Content>.*)$", "%Y-%m-%d %H:%M:%S.%f")
    result = validate(bad, lines, 2022)
    assert not result.accepted and any("timestamp parses" in r for r in result.reasons)


def test_discovery_copes_with_pathological_long_lines():
    lines = app_lines(300)
    for i in range(0, 300, 50):
        lines[i] = lines[i] + " " + "x(" * 30_000  # 60 KB of unbalanced parentheses in the content
    found = discover(lines, 2022)
    assert found.accepted, found.explain()
    parsed = found.candidate.header_format().parse(pa.array(lines), 2022)
    assert parsed.content.to_pylist()[50].endswith("x(x(")


def test_json_lines_with_custom_keys_and_epoch_millis():
    rnd = random.Random(3)
    lines = [json.dumps({"t": 1_700_000_000_000 + i * 1000, "sev": rnd.choice(("info", "error")),
                         "body": f"{rnd.choice(WORDS)} {rnd.choice(WORDS)} {i}", "svc": "billing", "n": i})
             for i in range(200)]
    found = discover(lines)
    assert found.accepted, found.explain()
    assert found.candidate.format == "jsonl"
    assert found.candidate.keys == {"ts": "t", "level": "sev", "message": "body"}
    assert found.candidate.ts_layout == "epoch_ms"
    parsed = found.candidate.header_format().parse(pa.array(lines), None)
    assert parsed.content.to_pylist()[5] == json.loads(lines[5])["body"]
    assert str(parsed.ts[1].as_py()) == "2023-11-14 22:13:21"
    assert set(parsed.level.to_pylist()) == {"INFO", "ERROR"}


def test_json_lines_with_iso_time_under_another_name():
    lines = [json.dumps({"@timestamp": f"2024-05-0{1 + i % 9}T12:00:{i % 60:02d}.{i:03d}Z", "log.level": "warn",
                         "message": f"disk {i} almost full", "logger": "storage"}) for i in range(100)]
    found = discover(lines)
    assert found.accepted, found.explain()
    assert found.candidate.keys == {"ts": "@timestamp", "level": "log.level", "message": "message",
                                    "component": "logger"}
    parsed = found.candidate.header_format().parse(pa.array(lines), None)
    assert parsed.component.to_pylist()[0] == "storage"
    assert parsed.level.to_pylist()[0] == "WARN"


def test_logfmt_with_its_key_mapping():
    rnd = random.Random(5)
    lines = [f'at=2024-01-02T03:{i % 60:02d}:05+01:00 lvl={rnd.choice(("info", "warn"))} '
             f'event="{rnd.choice(WORDS)} {rnd.choice(WORDS)} {i}" module=auth took={rnd.randint(1, 900)}ms'
             for i in range(200)]
    found = discover(lines)
    assert found.accepted, found.explain()
    assert found.candidate.format == "logfmt"
    assert found.candidate.keys == {"ts": "at", "level": "lvl", "message": "event", "component": "module"}
    parsed = found.candidate.header_format().parse(pa.array(lines), None)
    assert parsed.content.to_pylist()[7].endswith(" 7")
    assert str(parsed.ts[0].as_py()) == "2024-01-02 02:00:05"


def _home_with_unknown_source(tmp_path) -> LogPilotPaths:
    paths = LogPilotPaths.from_env(tmp_path).ensure()
    (paths.home / "sources.yaml").write_text(
        "sources:\n- {name: other, glob: 'other/**/*.log', service: other, format: '<Date> <Time> <Content>'}\n")
    folder = paths.landing_zone / "payments" / "2022"
    folder.mkdir(parents=True)
    (folder / "app.log").write_text("\n".join(app_lines(300)) + "\n")
    return paths


def _counts(paths: LogPilotPaths) -> tuple[int, int, int]:
    with connect(paths.db_path, read_only=True) as con:
        return tuple(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("logs", "quarantine", "discovery_queue"))


def test_accepted_rule_reparses_quarantined_and_queued_lines_exactly_once(tmp_path):
    paths = _home_with_unknown_source(tmp_path)
    materialize_year(paths.home, 2022)  # the real backfill: every line of the undeclared file is quarantined
    assert _counts(paths) == (0, 300, 0)
    live = app_lines(40, seed=9, year=2026)
    with connect(paths.db_path) as con:  # what the live sink queues for a key no source declares
        con.execute("INSERT INTO discovery_queue SELECT 'payments', 'logpilot.raw/0', o, raw, 'unknown_source', "
                    "now() FROM (SELECT unnest(range(40)) AS o, unnest(?::VARCHAR[]) AS raw)", [live])

    outcome = run_discovery(paths, "payments", accept_by="tester")
    assert outcome.found.accepted and outcome.rule_id == "payments@v1"
    assert load_sources(paths.sources_file)[-1].rule_id == "payments@v1"

    home = LogPilotHome(home=str(paths.home))
    requests = discovery_defs.discovered_rules(dg.build_sensor_context(resources={"logpilot": home}))
    assert [r.run_key for r in requests] == ["reparse:payments@v1"]
    for _ in range(2):  # a second run (a retry, a re-executed job) moves nothing twice
        result = discovery_defs.reparse_discovered.execute_in_process(run_config=requests[0].run_config,
                                                                      resources={"logpilot": home})
        assert result.success
        assert _counts(paths) == (340, 0, 0)
    assert result.output_for_node("reparse_parked_lines")["moved"] == 0
    with connect(paths.db_path, read_only=True) as con:
        messages = [m for (m,) in con.execute("SELECT message FROM logs WHERE source LIKE '%app.log' "
                                              "ORDER BY source_offset").fetchall()]
        live_years = con.execute("SELECT DISTINCT year FROM logs WHERE source = 'logpilot.raw/0'").fetchall()
        version = con.execute("SELECT status, accepted_by, proposed_by FROM format_rule_versions").fetchall()
        templates = con.execute("SELECT count(*) FROM templates WHERE service = 'payments'").fetchone()[0]
    assert messages == [content_of(line) for line in app_lines(300)]
    assert live_years == [(2026,)]
    assert version == [("accepted", "tester", "offline:header")]
    assert templates > 0


def test_unknown_live_source_triggers_discovery_once_enough_lines_queued(tmp_path):
    paths = LogPilotPaths.from_env(tmp_path).ensure()
    home = LogPilotHome(home=str(paths.home))
    settings = discovery_defs.SchemaDiscovery(min_samples=100, auto_accept=True)
    context = dg.build_sensor_context(resources={"logpilot": home, "discovery": settings})
    with connect(paths.db_path) as con:
        ensure_schema(con)
        for n in (60, 120):
            con.execute("DELETE FROM discovery_queue")
            con.execute("INSERT INTO discovery_queue SELECT 'checkout', 'logpilot.raw/1', o, raw, 'unknown_source', "
                        "now() FROM (SELECT unnest(range(?)) AS o, unnest(?::VARCHAR[]) AS raw)",
                        [n, app_lines(n, seed=4, year=2026)])
            publish_queue_counts(con, paths.state_dir)
            if n == 60:
                assert isinstance(discovery_defs.unknown_live_sources(context), dg.SkipReason)
    requests = discovery_defs.unknown_live_sources(context)
    assert [r.run_key for r in requests] == ["discover:checkout:1"]
    result = discovery_defs.discover_live_source.execute_in_process(
        run_config=requests[0].run_config, resources={"logpilot": home, "discovery": settings})
    assert result.output_for_node("discover_source_rule") == {"rule_id": "checkout@v1", "accepted": True}
    assert isinstance(discovery_defs.unknown_live_sources(context), dg.SkipReason)  # now declared
    with connect(paths.db_path, read_only=True) as con:
        assert con.execute("SELECT accepted_by FROM format_rule_versions").fetchall() == [("auto",)]


@pytest.mark.parametrize("line", ["", "   "])
def test_discovery_needs_samples(line):
    assert not discover([line] * 100).accepted


TRUTH = Path(__file__).parent / "data" / "loghub_2k"


@pytest.mark.parametrize("system", ["HDFS", "Hadoop", "OpenSSH", "HealthApp", "Proxifier", "Windows"])
def test_one_mining_configuration_meets_the_template_thresholds(system):
    """Discovered rule + the default mining configuration (no per-system settings) on raw Loghub-2k lines."""
    from bench_templates import logpilot
    from loghub import f1_grouping_accuracy, grouping_accuracy, parsing_accuracy

    lines = (TRUTH / f"{system}_2k.log").read_text(encoding="utf-8").splitlines()
    truth_ids = (TRUTH / "truth" / f"{system}_2k.event_ids").read_text().split()
    with open(TRUTH / "truth" / f"{system}_2k.log_templates_corrected.csv", newline="", encoding="utf-8") as fh:
        templates = {row["EventId"]: row["EventTemplate"] for row in csv.DictReader(fh)}
    ids, predicted, _ = logpilot(system, lines)
    assert grouping_accuracy(truth_ids, ids) >= 0.98
    assert f1_grouping_accuracy(truth_ids, ids) >= 0.86
    assert parsing_accuracy([templates[i] for i in truth_ids], predicted) >= 0.85
