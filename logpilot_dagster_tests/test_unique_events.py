"""``logs`` has no key; every write path keeps ``event_id`` unique by construction. Each test takes one path
(year reloads, live replays and broker resets, re-parse of discovered rules, tiering / restore / purge round
trips) and asserts ``count(*) = count(DISTINCT event_id)`` after every step, with the rows still all there."""

from __future__ import annotations

import json
from datetime import datetime

import dagster as dg
import pyarrow as pa

from logpilot_dagster.cli import main
from logpilot_dagster.defs import discovery as discovery_defs
from logpilot_dagster.defs.resources import LogPilotHome
from logpilot_dagster.discovery.service import run_discovery
from logpilot_dagster.ingest.transform import LOGS_SCHEMA, QUARANTINE_SCHEMA, source_key
from logpilot_dagster.lifecycle.restore import restore_range
from logpilot_dagster.lifecycle.settings import TierStoreSettings
from logpilot_dagster.lifecycle.store import tier_store
from logpilot_dagster.lifecycle.tiering import Tiering, TieringPolicy
from logpilot_dagster.lifecycle.views import prepare_reader
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.unique import duplicate_ids
from logpilot_dagster.storage.warehouse import SCHEMA, connect, ensure_schema
from logpilot_dagster.stream.batches import DISCOVERY_SCHEMA
from logpilot_dagster.stream.sink import Batch, write_batch
from logpilot_dagster_tests.lifecycle_data import stored_event_ids
from logpilot_dagster_tests.pipeline import build_home, materialize_year
from logpilot_dagster_tests.test_discovery import _home_with_unknown_source

TOPIC = "logpilot.raw"
TEMPLATES = pa.table({"template_id": ["t-ok"], "template": ["ok <*>"], "service": ["payments-api"]})


def ids_and_rows(paths: LogPilotPaths, table: str = "logs") -> tuple[int, int]:
    """(duplicated ids, rows) of ``table``, read the way the agent reads (``logs_all`` over the tiers)."""
    with connect(paths.db_path, read_only=True) as con:
        prepare_reader(con, paths)
        return duplicate_ids(con, table), con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def live_batch(offsets: range, partition: int = 0, record_ms: int = 1_780_000_000_000) -> Batch:
    """What the transform stage hands the sink for ``offsets`` of one partition (ids as ``records._lines``)."""
    source = f"{TOPIC}/{partition}"
    rows = pa.table({
        "event_id": [f"{source_key(source)}:{o}@{record_ms + o}" for o in offsets],
        "ts": pa.array([datetime.fromtimestamp((record_ms + o) / 1000) for o in offsets], pa.timestamp("us")),
        "service": ["payments-api"] * len(offsets), "level": ["INFO"] * len(offsets),
        "template_id": ["t-ok"] * len(offsets), "message": [f"ok {o}" for o in offsets],
        "params": [[str(o)] for o in offsets], "source": [source] * len(offsets), "source_offset": list(offsets),
        "year": [datetime.fromtimestamp((record_ms + o) / 1000).year for o in offsets],
        "component": ["api"] * len(offsets)}).cast(LOGS_SCHEMA)
    return Batch(TOPIC, rows, QUARANTINE_SCHEMA.empty_table(), DISCOVERY_SCHEMA.empty_table(),
                 {partition: offsets.stop}, {partition: f"{record_ms + offsets.stop - 1}:0"}, TEMPLATES, {})


def test_live_replays_and_broker_resets_store_each_record_once(tmp_path):
    """The real sink, batch by batch: a replay of stored offsets, the same after ``stream_offsets`` was lost,
    a broker that restarted empty (offsets from 0 again, new record times) and a replay across old and new
    offsets; the template count always equals the rows."""
    paths = LogPilotPaths.from_env(tmp_path).ensure()
    with connect(paths.db_path) as con:
        ensure_schema(con)

        def write(batch: Batch) -> int:
            inserted = write_batch(con, batch)
            assert duplicate_ids(con) == 0
            assert con.execute("SELECT count FROM templates WHERE template_id = 't-ok'").fetchone()[0] == \
                con.execute("SELECT count(*) FROM logs").fetchone()[0]
            return inserted

        assert write(live_batch(range(0, 100))) == 100
        assert write(live_batch(range(100, 200))) == 100  # the common path: past everything stored
        assert write(live_batch(range(0, 200))) == 0  # the whole partition again
        con.execute("DELETE FROM stream_offsets")  # offsets lost: the highest stored offset comes from logs
        assert write(live_batch(range(150, 250))) == 50
        assert con.execute("SELECT stored_through FROM stream_offsets").fetchone()[0] == 249
        assert write(live_batch(range(0, 80), record_ms=1_790_000_000_000)) == 80  # a new log, same offsets
        assert con.execute("SELECT next_offset, stored_through FROM stream_offsets").fetchone() == (80, 249)
        assert write(live_batch(range(60, 300), record_ms=1_790_000_000_000)) == 220  # 60..79 stored already
        assert write(live_batch(range(0, 10), partition=1)) == 10  # another partition, nothing stored
        assert con.execute("SELECT count(*) FROM logs").fetchone()[0] == 250 + 300 + 10


def test_a_year_loaded_again_and_again_holds_each_line_once(tmp_path):
    build_home(tmp_path, (2022, 2023), lines=6_000)
    paths = LogPilotPaths.from_env(tmp_path)
    duplicated, rows = ids_and_rows(paths)
    assert duplicated == 0 and rows > 0
    for _ in range(2):
        materialize_year(tmp_path, 2022)
        assert ids_and_rows(paths) == (0, rows)


def test_reparse_of_a_discovered_rule_then_a_reload_hold_each_line_once(tmp_path):
    paths = _home_with_unknown_source(tmp_path)
    materialize_year(paths.home, 2022)
    assert run_discovery(paths, "payments", accept_by="tester").found.accepted
    home = LogPilotHome(home=str(paths.home))
    [request] = discovery_defs.discovered_rules(dg.build_sensor_context(resources={"logpilot": home}))
    for _ in range(2):
        assert discovery_defs.reparse_discovered.execute_in_process(run_config=request.run_config,
                                                                    resources={"logpilot": home}).success
        assert ids_and_rows(paths) == (0, 300)
    materialize_year(paths.home, 2022)  # the year again, now parsed by the accepted rule at staging
    assert ids_and_rows(paths) == (0, 300)


def test_tiering_restore_reload_and_purge_round_trips_hold_each_event_once(tmp_path, capsys):
    build_home(tmp_path, (2022, 2023), lines=6_000)
    paths = LogPilotPaths.from_env(tmp_path)
    rows = ids_and_rows(paths)[1]
    settings = TierStoreSettings.from_env(paths)

    def tier(policy: TieringPolicy, now: datetime) -> None:
        Tiering(paths, tier_store(settings), settings, policy, now).run()
        with connect(paths.db_path, read_only=True) as con:
            ids = stored_event_ids(con, paths.home / "tiers")
        assert len(ids) == len(set(ids)) == rows

    tier(TieringPolicy(cold_after_days=10_000), datetime(2024, 6, 1))  # 2022 and 2023 go warm
    assert ids_and_rows(paths, "logs_all") == (0, rows)
    materialize_year(tmp_path, 2022)  # a reload brings 2022 back into hot; the next run keeps the hot copy
    tier(TieringPolicy(cold_after_days=10_000), datetime(2024, 6, 2))
    assert ids_and_rows(paths, "logs_all") == (0, rows)
    tier(TieringPolicy(), datetime(2026, 12, 2))  # everything cold
    restored = restore_range(paths, tier_store(settings), settings, None, None, now=datetime(2026, 12, 2))
    assert restored.objects_restored > 0
    assert ids_and_rows(paths, "logs_all") == (0, rows)
    capsys.readouterr()
    assert main(["--home", str(tmp_path), "purge", "--service", "payments-api", "--from", "2022-01-01",
                 "--to", "2022-02-01", "--json"]) in (0, 1)
    purged = json.loads(capsys.readouterr().out)
    duplicated, after = ids_and_rows(paths, "logs_all")
    assert duplicated == 0 and 0 < after <= rows
    assert purged["request_id"]


def test_a_warehouse_with_the_former_key_is_migrated_keeping_its_rows(tmp_path):
    paths = LogPilotPaths.from_env(tmp_path).ensure()
    with connect(paths.db_path) as con:
        con.execute(SCHEMA.replace("event_id VARCHAR,", "event_id VARCHAR PRIMARY KEY,", 1))
        con.execute("INSERT INTO logs (event_id, source, source_offset, year) "
                    "SELECT 'e' || i, 'f', i, 2022 FROM range(1000) t(i)")
    with connect(paths.db_path) as con:
        ensure_schema(con)
        assert con.execute("SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'logs'").fetchone() == (0,)
        assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM logs").fetchone() == (1000, 1000)
        ensure_schema(con)  # idempotent
        assert con.execute("SELECT count(*) FROM logs").fetchone() == (1000,)


def test_duplicate_ids_counts_repeats(tmp_path):
    """The helper the other tests rely on reports a planted repeat."""
    paths = LogPilotPaths.from_env(tmp_path).ensure()
    with connect(paths.db_path) as con:
        ensure_schema(con)
        con.execute("INSERT INTO logs (event_id) VALUES ('a'), ('b'), ('a')")
        assert duplicate_ids(con) == 1
