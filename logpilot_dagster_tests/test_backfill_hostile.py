"""Hostile or careless landing zones: files that cannot be dated or read, links out of the zone, a BOM, and two runs
of one year at once. None may fail the backfill or lose a file; each is quarantined with a reason."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import yaml

from logpilot_dagster.ingest.backfill import stage_year, year_dirs, year_lock
from logpilot_dagster.ingest.reader import BOM
from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.file_lock import LockBusyError
from logpilot_dagster.storage.object_store import LocalObjectStore
from logpilot_dagster_tests.pipeline import materialize_year, metadata

SOURCES = [
    {"name": "app", "glob": "app/**/*.log*", "format": "<Date> <Time> <Level> <Content>"},
    {"name": "sys", "glob": "sys/**/*.log", "format": "<Month> <Day> <Time> <Component>: <Content>",
     "ts_layout": "%b %d %H:%M:%S"},
    {"name": "events", "glob": "events/*.jsonl", "format": "jsonl", "year_from": "header"},
]


def app_lines(year: int, n: int, tag: str = "") -> str:
    return "".join(f"{year}-03-{1 + i % 28:02d} 12:{i // 60 % 60:02d}:{i % 60:02d} INFO {tag}request {i} served\n"
                   for i in range(n))


def write_home(home: Path, app_n: int = 40) -> LogPilotPaths:
    paths = LogPilotPaths.from_env(home).ensure()
    (home / "sources.yaml").write_text(yaml.safe_dump({"sources": SOURCES}))
    land = paths.landing_zone
    files = {
        "app/2023/a.log": app_lines(2023, app_n).encode(),
        "app/2023/bom.log": BOM + app_lines(2023, 3, "bom ").encode(),
        "app/2022/a.log": app_lines(2022, 5).encode(),
        "sys/2023/s.log": b"Mar 01 10:00:00 kernel: booted\nMar 01 10:00:01 sshd: listening\n",
        "sys/undated/s.log": b"Mar 02 10:00:00 kernel: no year anywhere\n",
        "events/ok.jsonl": b'{"ts": "2023-05-01T10:00:00.000Z", "level": "INFO", "msg": "hello"}\n',
        "events/nots.jsonl": b"".join(b'{"level": "INFO", "msg": "no time %d"}\n' % i for i in range(250)),
    }
    for key, data in files.items():
        (land / key).parent.mkdir(parents=True, exist_ok=True)
        (land / key).write_bytes(data)
    (land / "app/2023/passwd.log").symlink_to("/etc/passwd")
    (land / "app/2023/gone.log").symlink_to(land / "app/2023/nothing-here.log")
    (land / "app/evil.log").symlink_to("/etc/passwd")
    os.mkfifo(land / "app/2023/pipe.log")  # opening it would block the run for ever
    return paths


def query(paths: LogPilotPaths, sql: str, params=None):
    con = duckdb.connect(str(paths.db_path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_files_that_cannot_be_dated_or_read_are_quarantined_and_the_rest_loads(tmp_path):
    paths = write_home(tmp_path)
    result = materialize_year(paths.home, 2023)  # a ValueError for sys/undated/s.log failed every year before
    refused = metadata(result, "landing_files")["refused_files"]
    assert set(refused) == {"sys/undated/s.log", "events/nots.jsonl", "app/2023/passwd.log", "app/2023/gone.log",
                            "app/evil.log", "app/2023/pipe.log"}
    loaded = dict(query(paths, "SELECT source, count(*) FROM logs GROUP BY 1"))
    assert loaded == {"app/2023/a.log": 40, "app/2023/bom.log": 3, "sys/2023/s.log": 2, "events/ok.jsonl": 1}
    reasons = dict(query(paths, "SELECT source, reason FROM quarantine"))
    assert reasons == {"sys/undated/s.log": "undated_file", "events/nots.jsonl": "undated_file",
                       "app/2023/passwd.log": "link_outside_store", "app/2023/gone.log": "dangling_link",
                       "app/evil.log": "link_outside_store", "app/2023/pipe.log": "not_a_file"}
    raw = dict(query(paths, "SELECT source, raw FROM quarantine"))
    assert "has no year" in raw["sys/undated/s.log"] and "first 200 lines" in raw["events/nots.jsonl"]
    assert "/etc/passwd" in raw["app/2023/passwd.log"] and not query(paths, "SELECT 1 FROM quarantine "
                                                                            "WHERE raw LIKE '%root:%'")
    # the BOM is not part of the first line: it loads instead of being quarantined as bad_timestamp
    assert query(paths, "SELECT min(source_offset), min(message) FROM logs WHERE source = 'app/2023/bom.log'") == [
        (3, "bom request 0 served")]
    shard = json.loads(year_dirs(paths, 2023)[2].read_text())
    in_year = query(paths, "SELECT count(*) FROM quarantine WHERE source IN "
                           "(SELECT source FROM loaded_files WHERE year = 2023)")[0][0]
    assert shard["lines_read"] == 46 + in_year and in_year == 3  # the year's two links and the FIFO
    materialize_year(paths.home, 2022)
    materialize_year(paths.home, 2023)
    per_file = query(paths, "SELECT source, count(*) FROM quarantine GROUP BY 1 HAVING count(*) > 1")
    assert per_file == [] and query(paths, "SELECT count(*) FROM logs WHERE year = 2022") == [(5,)]


def test_the_landing_store_never_opens_a_link_out_of_it(tmp_path):
    paths = write_home(tmp_path)
    store = LocalObjectStore(paths.landing_zone)
    with pytest.raises(PermissionError, match="outside"):
        store.open("app/2023/passwd.log")
    with pytest.raises(PermissionError, match="outside"):
        store.open("../../../../etc/passwd")


HOLD = """
import sys, time
from logpilot_dagster.ingest.backfill import year_lock
from logpilot_dagster.settings import LogPilotPaths
with year_lock(LogPilotPaths.from_env(sys.argv[1]), 2023, "hold", 0):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_run_of_a_year_waits_then_stops_with_a_clear_message(tmp_path):
    paths = write_home(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(paths.home)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockBusyError, match=rf"cannot stage year 2023: .* held by pid {holder.pid} .*\(hold "
                                                r"year 2023\)"):
            stage_year(paths, LocalObjectStore(paths.landing_zone), SchemaRegistry.load(paths), 2023, lock_wait_s=0.5)
    finally:
        holder.kill()
        holder.wait()
    assert not year_dirs(paths, 2023)[2].exists()  # nothing was touched while the other run held the year
    with year_lock(paths, 2023, "check", 5):  # released when its holder died
        pass


RUN = """
import sys, time
from pathlib import Path
from logpilot_dagster.ingest.backfill import load_year, stage_year
from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.object_store import LocalObjectStore
paths = LogPilotPaths.from_env(sys.argv[1])
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
for _ in range(3):
    r = stage_year(paths, LocalObjectStore(paths.landing_zone), SchemaRegistry.load(paths), 2023)
    load_year(paths, SchemaRegistry.load(paths), 2023)
print(r.lines_read)
"""


def test_two_runs_of_one_year_at_once_both_finish(tmp_path):
    """Two real processes stage and load the same year three times each, at the same moment: they take turns."""
    paths = write_home(tmp_path, app_n=10_000)
    go = tmp_path / "go"
    runs = [subprocess.Popen([sys.executable, "-c", RUN, str(paths.home), str(go)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(0.5)
    go.touch()
    outs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-1500:] for _, err in outs]
    lines_read = int(outs[0][0].split()[-1])
    rows = query(paths, "SELECT count(*), count(DISTINCT event_id) FROM logs WHERE year = 2023")[0]
    quarantined = query(paths, "SELECT count(*) FROM quarantine WHERE source IN "
                               "(SELECT source FROM loaded_files WHERE year = 2023)")[0][0]
    assert rows[0] == rows[1] == 10_006 and rows[0] + quarantined == lines_read
