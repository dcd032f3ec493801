"""Template text written from the values seen, and params that rebuild every stored message exactly
(Loghub-2k data: https://github.com/logpai/loghub)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from logpilot_dagster.ingest.backfill import load_year, stage_year
from logpilot_dagster.ingest.mining import ServiceMiner
from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.ingest.template_text import extract_params, render, template_regex
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.object_store import LocalObjectStore
from logpilot_dagster.storage.warehouse import connect
from logpilot_dagster.stream import LineProducer, run_ingestion
from logpilot_dagster_tests.broker_fixture import recent, sample_lines

LOGHUB = Path(__file__).parent / "data" / "loghub_2k"


def written(lines: list[str]) -> set[str]:
    miner = ServiceMiner("svc")
    miner.mine(pa.array(lines))
    return set(miner.templates().values())


def test_constant_punctuation_and_prefixes_stay_around_the_variable():
    assert written([f"[ib_sm_sweep.c:{n}]: No topology change" for n in (1303, 1084, 2211)]) == {
        "[ib_sm_sweep.c:<*>]: No topology change"}
    assert written([f"synchronized to 10.100.{n}.1, stratum {n % 3}" for n in (18, 20, 33)]) == {
        "synchronized to <*>, stratum <*>"}
    assert written([f"Served block blk_{n} to /10.0.0.{n % 200}:50010" for n in (-4242, 31337, 99)]) == {
        "Served block <*> to <*>"}
    assert written([f"authentication failure; rhost=10.0.0.{n} user=root uid={n}" for n in (1, 2, 3)]) == {
        "authentication failure; rhost=<*> user=root uid=<*>"}


def test_whitespace_is_kept_and_long_lists_are_one_variable():
    assert written(["clusterAddMember  (command 1902)", "clusterAddMember  (command 1900)"]) == {
        "clusterAddMember  (command <*>)"}
    lines = [f"ask 10.0.0.1:50010 to delete {' '.join(f'blk_{n + i}' for i in range(k))}" for n, k in
             ((100, 8), (200, 9))]
    assert written(lines) == {"ask <*> to delete <*>"}


@pytest.mark.parametrize("template, message", [
    ("a <*> b (<*>) c", "a x  y b (z)) c"),
    ("<*>", "anything ^$.*+?()[]{}| at all\n"),
    ("no variables here.", "no variables here."),
    ("[<*>]: done", "[]: done"),
])
def test_params_rebuild_the_message(template, message):
    [params] = extract_params(pa.array([message]), pa.array([template])).to_pylist()
    assert render(template, params) == message
    assert extract_params(pa.array(["something else"]), pa.array([template_regex("x <*>")])).to_pylist() == [None]


def test_a_message_that_does_not_fit_widens_its_template_and_keeps_exact_params():
    miner = ServiceMiner("svc")
    lines = ["[ib_sm_sweep.c:1303]: sweep done", "[ib_sm_sweep.c:1084]: sweep done", "[ib_sm_other.c:9]: sweep done"]
    mined = miner.mine(pa.array(lines))  # one key, its text written from the first line, then widened
    texts = miner.templates()
    assert set(texts.values()) == {"[<*>]: sweep done"} and mined.unfitted == 0
    for tid, params, line in zip(mined.ids.to_pylist(), mined.params.to_pylist(), lines):
        assert render(texts[miner.aliases.get(tid, tid)], params) == line


def write_loghub_home(home: Path, systems: dict[str, list[int]]) -> LogPilotPaths:
    """Landing files of Loghub-2k systems, each split over the given years (one shard per year), declared with
    the one default mining configuration."""
    formats = json.loads((LOGHUB / "formats.json").read_text())
    sources = [{"name": name, "glob": f"{name}/**/*.log", "service": name, "format": formats[name]["log_format"]}
               for name in systems]
    home.mkdir(parents=True, exist_ok=True)
    (home / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}, sort_keys=False))
    for name, years in systems.items():
        lines = (LOGHUB / f"{name}_2k.log").read_text(encoding="utf-8").splitlines()
        size = -(-len(lines) // len(years))
        for k, year in enumerate(years):
            path = home / "landing_zone" / name / str(year) / f"{name}.log"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines[k * size:(k + 1) * size]) + "\n", encoding="utf-8")
    return LogPilotPaths.from_env(home).ensure()


def assert_every_row_renders(paths: LogPilotPaths) -> int:
    with connect(paths.db_path, read_only=True) as con:
        rows = con.execute("SELECT l.message, l.params, t.template FROM logs l "
                           "LEFT JOIN templates t USING (template_id)").fetchall()
    bad = [(m, p, t) for m, p, t in rows if t is None or render(t, p) != m]
    assert not bad, bad[:3]
    assert not any(p and p[0] is None for _, p, _ in rows)  # no message needed the whole-message fallback
    return len(rows)


def test_backfilled_rows_rebuild_from_template_and_params(tmp_path):
    """Several Loghub systems; Mac and Linux split over two years so the second load merges its shard's templates
    into the first one's and moves rows to widened templates (their params are refitted)."""
    paths = write_loghub_home(tmp_path / "home", {"HDFS": [2008], "OpenSSH": [2017], "Android": [2017],
                                                  "Mac": [2017, 2018], "Linux": [2005, 2006]})
    store = LocalObjectStore(paths.landing_zone)
    for year in (2005, 2006, 2008, 2017, 2018):
        stage_year(paths, store, SchemaRegistry.load(paths), year)
    for year in (2018, 2006, 2008, 2017, 2005):
        load_year(paths, SchemaRegistry.load(paths), year)
    with connect(paths.db_path, read_only=True) as con:
        [(aliases,)] = con.execute("SELECT count(*) FROM template_aliases").fetchall()
    assert aliases > 0
    assert assert_every_row_renders(paths) == 10_000


def test_live_rows_rebuild_from_template_and_params(broker, live_settings):
    paths = live_settings.paths
    start = recent(hours=2)
    with LineProducer(broker, SchemaRegistry.load(paths)) as producer:
        producer.send("payments-api", sample_lines("payments-api", 600, start))
        producer.send("auth-service", sample_lines("auth-service", 600, start, seed=1))
    run_ingestion(live_settings, until_caught_up=True, broker=broker)
    assert assert_every_row_renders(paths) == 1200
