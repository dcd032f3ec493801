"""The one writer that keeps its DuckDB connection (the live worker) lets other processes in when they wait."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from logpilot_dagster.storage.warehouse import HeldConnection, waiting_marker

READER = """
import sys
from logpilot_dagster.storage.warehouse import connect
with connect(sys.argv[1], read_only=True, wait_s=20) as con:
    print(con.execute("SELECT count(*) FROM quarantine").fetchone()[0])
"""


def test_a_busy_held_connection_lets_a_waiting_process_in(tmp_path):
    db = tmp_path / "logs.duckdb"
    held = HeldConnection(db, linger_s=60)  # never idle long enough to close on its own here
    stop = threading.Event()

    def busy_writer():
        while not stop.is_set():
            with held.use() as con:
                con.execute("INSERT INTO quarantine VALUES ('t/0', 1, 'x', 'test', now())")
            time.sleep(0.01)

    writer = threading.Thread(target=busy_writer)
    writer.start()
    try:
        time.sleep(0.5)
        started = time.monotonic()
        reader = subprocess.run([sys.executable, "-c", READER, str(db)], capture_output=True, text=True, timeout=60)
        waited = time.monotonic() - started
        with held.use() as con:  # and the writer gets the file back afterwards
            rows_after = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    finally:
        stop.set()
        writer.join()
        held.close()
    assert reader.returncode == 0, reader.stderr
    assert 0 < int(reader.stdout) <= rows_after
    assert waited < 10
    assert not waiting_marker(db).exists()
