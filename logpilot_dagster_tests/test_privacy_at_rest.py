"""Privacy at rest: PII planted in every bad-input reason and every column is found in no file under the home.

One home per mode: a real backfill (the bootstrap assets materialized as ``logpilot backfill`` does, on a
Dagster instance under the home: Parquet, DuckDB, JSON state), then a live catch-up (the ``live_ingestion`` job
on the same instance) through the real embedded broker, then the template vectors (Chroma). Then the bytes of every file under the home (the landing zone, the
user's own archive, aside) are searched for every planted value, before and after a DuckDB CHECKPOINT; because
DuckDB and zstd Parquet compress text, the values are also searched in what they store: every DuckDB column
through SQL, every Parquet page decoded with pyarrow, and every Parquet footer's column statistics.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from logpilot_dagster.cli import use_home
from logpilot_dagster.defs import vector_assets as va
from logpilot_dagster.defs.live import LiveIngestion, live_ingestion
from logpilot_dagster.defs.resources import LogPilotHome
from logpilot_dagster.ingest.backfill import backfill_t1
from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.ingest.sample_data import LAYOUTS, render_line, source_specs
from logpilot_dagster.ingest.sources import write_sources
from logpilot_dagster.privacy.pseudonym import KEY_ENV, MODE_ENV, PSEUDONYMIZE, REDACT, PseudonymKeys
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.warehouse import connect
from logpilot_dagster.stream import LineProducer
from logpilot_dagster_tests.pipeline import GLOBAL, materialize_year, metadata, resources

YEAR = 2023
KEY = "privacy-test-key"
#: kind -> planted value (the kinds the masker knows, in every spelling the issue names).
PLANTED = {
    "email": "planted.person@example.org",
    "email_dotless": "opsplanted@mailhost",
    "email_idn": "jörg@bücher-straße.de",
    "email_fullwidth": "fwplanted＠example.net",
    "email_urlencoded": "urlplanted%40example.com",
    "ip": "203.0.113.77",
    "ip_zeros": "010.020.030.040",
    "ip_component": "198.51.100.23",
    "ipv6": "2001:db8::7:77",
    "card": "4111 1111 1111 1111",
    "ssn": "219-09-9998",
    "ssn_spaced": "219 09 9998",
    "ssn_bare": "219099997",
    "email_in_file_name": "filename.person@example.org",
    "email_in_record_key": "keyplanted@example.org",
}
#: Not PII kinds of the masker, but they must not be stored either: a syslog host name (the Node field).
HOST = "plantedhost-a1"
ALL_PII = ("mail planted.person@example.org, opsplanted@mailhost, jörg@bücher-straße.de, fwplanted＠example.net "
           "and /u?e=urlplanted%40example.com from 203.0.113.77 / 010.020.030.040 / 2001:db8::7:77 card "
           "4111 1111 1111 1111 ssn 219-09-9998, ssn 219 09 9998, SSN: 219099997")
MASKER_KIND = {"email": "email", "ip": "ip", "ipv6": "ipv6", "card": "credit_card", "ssn": "ssn"}


def _line(service: str, ts: datetime, msg: str, component: str = "comp") -> bytes:
    return LAYOUTS[service].render(ts, "INFO", component, msg, random.Random(0)).encode()


def _good(service: str, n: int, start: datetime) -> list[bytes]:
    r = random.Random(service)
    return [render_line(service, start + timedelta(minutes=i), r)[1].encode() for i in range(n)]


def _write(path: Path, lines: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def write_planted_landing_zone(landing: Path) -> None:
    """A year of small files with PII in every column and in every reason a line or file is quarantined for."""
    t = datetime(YEAR, 3, 1, 10, tzinfo=timezone.utc)
    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
    _write(landing / "payments-api" / str(YEAR) / "payments-api.log", _good("payments-api", 20, t) + [
        _line("payments-api", t, f"charge failed: {ALL_PII}"),
        _line("payments-api", t, f"wcp.dll version 0.0.0.6 agent {ua} for {PLANTED['email']}"),
        b"2023-03-01 10:05:00,000 INFO [x] c: \xff\xfe undecodable " + ALL_PII.encode(),  # undecodable_utf8
        f"no header here: {ALL_PII}".encode(),  # no_format_match
        ALL_PII.encode() + b" " + b"x" * (70 * 1024),  # line_too_long
        f"2023-13-45 99:00:00,000 INFO [t] c: bad time {ALL_PII}".encode(),  # bad_timestamp
        b"",  # blank_line
    ])
    # A declared file and an empty file with an email in their names.
    _write(landing / "payments-api" / str(YEAR) / f"export-{PLANTED['email_in_file_name']}.log",
           _good("payments-api", 5, t + timedelta(days=1)))
    (landing / "payments-api" / str(YEAR) / f"empty-{PLANTED['email_in_file_name']}.log").write_bytes(b"")
    t = datetime(YEAR, 4, 1, tzinfo=timezone.utc)
    _write(landing / "auth-service" / str(YEAR) / "auth-service.log", _good("auth-service", 20, t) + [
        _line("auth-service", t, f"login: {ALL_PII}", component=PLANTED["ip_component"]),  # jsonl logger = an IP
        _line("auth-service", t, "token refreshed", component=f"auth.{PLANTED['ipv6']}"),
        ('{"ts": "2023-04-01T00:00:01.000Z", "level": "info", "msg": "broken ' + ALL_PII).encode(),  # bad JSON
    ])
    t = datetime(YEAR, 5, 1, tzinfo=timezone.utc)
    _write(landing / "notification-worker" / str(YEAR) / "notify.log", _good("notification-worker", 20, t) + [
        _line("notification-worker", t, f"sent: {ALL_PII}", component=PLANTED["email_dotless"]),  # logfmt logger
    ])
    t = datetime(YEAR, 6, 1, tzinfo=timezone.utc)
    _write(landing / "edge-gateway" / str(YEAR) / "edge.log", _good("edge-gateway", 20, t) + [
        f"{t:%b} {t.day:2d} {t:%H:%M:%S} {HOST} haproxy[123]: backend {PLANTED['ip']} up".encode(),  # host in Node
    ])
    # A gzip cut short inside a line that holds PII (truncated_gzip).
    t = datetime(YEAR, 7, 1, tzinfo=timezone.utc)
    r = random.Random(3)
    filler = "".join(r.choice("0123456789abcdef") for _ in range(40_000))
    data = b"".join(line + b"\n" for line in _good("checkout-web", 200, t))
    data += _line("checkout-web", t, f"cut {ALL_PII} {filler}") + b"\n"
    whole = gzip.compress(data)
    (landing / "checkout-web" / str(YEAR)).mkdir(parents=True)
    (landing / "checkout-web" / str(YEAR) / "checkout-web.log.gz").write_bytes(whole[: len(whole) - 4000])
    # An undeclared source, with an email in its name and PII in its lines (no_source_declared).
    _write(landing / "legacy-batch" / str(YEAR) / f"dump-{PLANTED['email_in_file_name']}.log",
           [f"BATCH 0001 {ALL_PII}".encode(), b"BATCH 0001 finished"])


def produce_planted_records(broker, paths: LogPilotPaths) -> None:
    """Live records with PII: good lines (message, jsonl logger) and each reason a record is set aside for."""
    topic = broker.settings.topic
    now = datetime.now(timezone.utc) - timedelta(minutes=30)
    now_ms = int(now.timestamp() * 1000)
    with LineProducer(broker, SchemaRegistry.load(paths)) as producer:
        producer.send("payments-api", _good("payments-api", 30, now) + [_line("payments-api", now, f"live {ALL_PII}")])
        producer.send("auth-service", [_line("auth-service", now, "live login", component=PLANTED["ip_component"])])
    raw = broker.producer()
    for value, key, ts in [
        (b"\xff\xfe live undecodable " + ALL_PII.encode(), b"payments-api", now_ms),  # not_utf8
        (ALL_PII.encode() + b" " + b"x" * (70 * 1024), b"payments-api", now_ms),  # oversize_record
        (f"no header, live: {ALL_PII}".encode(), b"payments-api", now_ms),  # no_format_match (+ discovery)
        (f"BATCH live {ALL_PII}".encode(), f"exports/{PLANTED['email_in_record_key']}".encode(), now_ms),  # unknown
        (_line("payments-api", now, f"future {ALL_PII}"), b"payments-api", now_ms + 3 * 86_400_000),  # bad time
    ]:
        raw.send(topic, key=key, value=value, timestamp_ms=ts).get(timeout=10)
    raw.close()


def spellings(value: str) -> set[bytes]:
    """How a value may sit in a file: UTF-8, or JSON-escaped (Dagster's event log, JSON state)."""
    return {value.encode(), json.dumps(value)[1:-1].encode()}


def byte_hits(home: Path, values: dict[str, str]) -> list[tuple[str, str]]:
    hits = []
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        rel = path.relative_to(home)
        if rel.parts[0] == "landing_zone":  # the user's source archive, not LogPilot's store
            continue
        data = path.read_bytes()
        hits += [(str(rel), name) for name, value in values.items() if any(s in data for s in spellings(value))]
    return hits


def parquet_hits(home: Path, values: dict[str, str]) -> list[tuple[str, str]]:
    """Values in decoded Parquet pages and in the footers' column statistics (min/max)."""
    hits = []
    for path in sorted(home.rglob("*.parquet")):
        meta = pq.ParquetFile(path).metadata
        stats = [str(meta.row_group(g).column(c).statistics) for g in range(meta.num_row_groups)
                 for c in range(meta.num_columns)]
        text = json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False) + "\n".join(stats)
        hits += [(str(path.relative_to(home)), name) for name, value in values.items() if value in text]
    return hits


def duckdb_hits(paths: LogPilotPaths, values: dict[str, str]) -> list[tuple[str, str]]:
    """Values in any column of any DuckDB table, as stored (decompressed by DuckDB)."""
    hits = []
    with connect(paths.db_path, read_only=True) as con:
        columns = con.execute("SELECT table_name, column_name FROM information_schema.columns "
                              "WHERE table_schema = 'main' AND table_name != 'system_catalog'").fetchall()
        for table, column in columns:
            for name, value in values.items():
                [(n,)] = con.execute(f'SELECT count(*) FROM "{table}" WHERE contains(CAST("{column}" AS VARCHAR), ?)',
                                     [value]).fetchall()
                if n:
                    hits.append((f"{table}.{column}", name))
    return hits


def checkpoint(paths: LogPilotPaths) -> None:
    with connect(paths.db_path) as con:
        con.execute("CHECKPOINT")


def query(paths: LogPilotPaths, sql: str) -> list[tuple]:
    with connect(paths.db_path, read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.mark.parametrize("mode", [REDACT, PSEUDONYMIZE])
def test_no_planted_value_is_stored_anywhere(mode, tmp_path, monkeypatch, broker):
    monkeypatch.setenv(MODE_ENV, mode)
    monkeypatch.setenv(KEY_ENV, KEY)
    home = tmp_path / "home"
    monkeypatch.setenv("LOGPILOT_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    paths = use_home(str(home))
    write_sources(paths.sources_file, source_specs())
    write_planted_landing_zone(paths.landing_zone)

    instance = dg.DagsterInstance.get()  # under the home (use_home)
    backfill = materialize_year(home, YEAR, instance=instance)
    assert metadata(backfill, "logs_table")["quarantined"] >= 10
    assert dg.materialize(GLOBAL, resources=resources(home), instance=instance).success
    produce_planted_records(broker, paths)
    live = {"logpilot": LogPilotHome(home=str(home)),
            "live": LiveIngestion(bootstrap_servers=broker.bootstrap_servers, topic=broker.settings.topic)}
    run = live_ingestion.execute_in_process(
        run_config={"ops": {"consume_raw_topic": {"config": {"t1": backfill_t1(paths).isoformat(),
                                                             "until_caught_up": True}}}},
        resources=live, instance=instance)
    assert run.success
    assert dg.materialize([va.template_vectors], resources={"logpilot": live["logpilot"]}, instance=instance).success
    instance.dispose()

    # Every reason and every column got its planted values: the check below would otherwise prove nothing.
    reasons = {r for (r,) in query(paths, "SELECT DISTINCT reason FROM quarantine")}
    assert reasons >= {"undecodable_utf8", "no_format_match", "line_too_long", "bad_timestamp", "truncated_gzip",
                       "no_source_declared", "empty_file", "not_utf8", "oversize_record", "unknown_source",
                       "event_time_out_of_range"}
    assert query(paths, "SELECT count(*) FROM discovery_queue") == [(2,)]
    assert query(paths, "SELECT count(*) FROM logs WHERE contains(message, 'version 0.0.0.6') "
                        "AND contains(message, 'Chrome/120.0.0.0')") == [(1,)]  # versions are not addresses

    values = {**PLANTED, "host": HOST}
    as_written = byte_hits(paths.home, values)
    checkpoint(paths)
    hits = {"bytes as written": as_written, "bytes after CHECKPOINT": byte_hits(paths.home, values),
            "decoded Parquet": parquet_hits(paths.home, values), "DuckDB columns": duckdb_hits(paths, values)}
    assert hits == {step: [] for step in hits}

    [(stored,)] = query(paths, "SELECT string_agg(message || ' ' || coalesce(component, ''), ' ') FROM logs")
    [(quarantined,)] = query(paths, "SELECT string_agg(raw || ' ' || source, ' ') FROM quarantine")
    [(templates,)] = query(paths, "SELECT string_agg(template, ' ') FROM templates")
    assert not re.search(r"<(EMAIL|IP|IPV6|CC|SSN):", templates)  # a template never holds a per-person token
    if mode == REDACT:
        for placeholder in ("<EMAIL_REDACTED>", "<IP_REDACTED>", "<IPV6_REDACTED>", "<CC_REDACTED>", "<SSN_REDACTED>"):
            assert placeholder in stored and placeholder in quarantined
        return
    keys = PseudonymKeys((KEY.encode(),))
    assert "_REDACTED>" not in stored + quarantined
    for name in ("email", "email_dotless", "email_idn", "email_fullwidth", "email_urlencoded", "ip", "ip_zeros",
                 "ip_component", "ipv6", "card", "ssn", "ssn_spaced", "ssn_bare"):
        token = keys.token(MASKER_KIND[name.split("_")[0]], PLANTED[name])
        assert token in stored and (name == "ip_component" or token in quarantined), name
    token = keys.token("email", PLANTED["email"])
    assert query(paths, f"SELECT count(*) > 0 FROM logs WHERE list_contains(params, '{token}')") == [(True,)]
