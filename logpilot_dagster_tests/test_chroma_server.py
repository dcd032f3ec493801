"""Chroma in client/server mode (lake profile): with ``LOGPILOT_CHROMA_URL`` every process reads and writes one
real ``chroma run`` server on loopback; the vectors still come from the local MiniLM model."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.lake

CHROMA = Path(sys.executable).with_name("chroma")

#: One process: sync its own templates through the server, then wait for the other's and search for them.
WORKER = """
import json, sys, time
from pathlib import Path
from logpilot_dagster.knowledge.vectors import search_templates, sync_template_vectors

me, other, local_dir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
texts = {"a": ["Connection to database <*> timed out after <*> ms", "Disk quota exceeded on volume <*>"],
         "b": ["User <*> logged in from <*>", "Payment <*> declined by issuer"]}
templates = [{"template_id": f"{me}{i}", "template": t, "service": f"svc-{me}", "count": 1,
              "first_seen": "2024-01-01", "last_seen": "2024-01-02"} for i, t in enumerate(texts[me])]
stats = sync_template_vectors(templates, local_dir)
query = {"a": "payment was declined", "b": "database connection timeout"}[me]
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    hits = search_templates(query, local_dir, k=1, service=f"svc-{other}")
    if hits:
        break
    time.sleep(0.2)
print(json.dumps({"stats": stats, "hit": hits[0] if hits else None}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    """``(url, path)`` of a real Chroma server (``chroma run``) on a free loopback port, stopped afterwards."""
    port, path = _free_port(), tmp_path / "chroma-server"
    log = open(tmp_path / "chroma.log", "wb")
    server = subprocess.Popen([str(CHROMA), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/api/v2/heartbeat", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "chroma.log").read_text()
            time.sleep(0.2)
        yield url, path
    finally:
        server.terminate()
        server.wait(10)
        log.close()


def test_two_processes_write_and_search_through_one_chroma_server(chroma_server, tmp_path):
    url, server_path = chroma_server
    env = {**os.environ, "LOGPILOT_CHROMA_URL": url}
    local = tmp_path / "home" / "chroma"
    procs = {me: subprocess.Popen([sys.executable, "-c", WORKER, me, other, str(local)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for me, other in (("a", "b"), ("b", "a"))}
    out = {}
    for me, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        out[me] = json.loads(stdout.strip().splitlines()[-1])

    for me in ("a", "b"):
        assert out[me]["stats"]["embedded"] == 2
    # each process finds the other's template, embedded by the other process, through the server
    assert out["a"]["hit"]["template_id"] == "b1" and out["a"]["hit"]["service"] == "svc-b"
    assert out["b"]["hit"]["template_id"] == "a0" and out["b"]["hit"]["service"] == "svc-a"
    assert out["a"]["hit"]["score"] > 0.3 and out["b"]["hit"]["score"] > 0.3
    # the vectors live on the server only: no embedded store was created on the client's side
    assert not local.exists()
    assert (server_path / "chroma.sqlite3").exists()


def test_a_malformed_server_url_is_refused(monkeypatch, tmp_path):
    from logpilot_dagster.knowledge.vectors import client

    monkeypatch.setenv("LOGPILOT_CHROMA_URL", "127.0.0.1:8000")
    with pytest.raises(ValueError, match="http://host:port"):
        client(tmp_path / "chroma")
    assert not (tmp_path / "chroma").exists()


def test_a_purge_re_masks_the_documents_a_chroma_server_holds(chroma_server, monkeypatch, tmp_path):
    """Server mode: the purge finds the value through the server's API and adds the documents back re-masked
    (same ids, re-embedded); a dry run changes nothing and a second purge finds nothing."""
    from logpilot_dagster.knowledge.vectors import TEMPLATES_COLLECTION, client, sync_template_vectors
    from logpilot_dagster.lifecycle.chroma_purge import purge_chroma_server
    from logpilot_dagster.lifecycle.matching import Matcher, PurgeRequest

    url, _ = chroma_server
    monkeypatch.setenv("LOGPILOT_CHROMA_URL", url)
    local = tmp_path / "chroma"
    leaked = "acct-7731-zeta"
    templates = [{"template_id": f"t{i}", "template": text, "service": "billing", "count": 1,
                  "first_seen": "2024-01-01", "last_seen": "2024-01-02"}
                 for i, text in enumerate([f"refund for {leaked} failed with <*>", "invoice <*> sent"])]
    sync_template_vectors(templates, local)
    matcher = Matcher.for_request(PurgeRequest(value=leaked), None)
    server = client(local)

    def documents() -> dict[str, str]:
        got = server.get_collection(TEMPLATES_COLLECTION).get(include=["documents", "metadatas"])
        return {i: d + json.dumps(m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])}

    assert purge_chroma_server(server, matcher, apply=False) == {TEMPLATES_COLLECTION: 1}
    assert leaked in documents()["t0"]
    assert purge_chroma_server(server, matcher, apply=True) == {TEMPLATES_COLLECTION: 1}
    after = documents()
    assert set(after) == {"t0", "t1"} and not any(leaked in text for text in after.values())
    assert "refund for" in after["t0"]
    assert purge_chroma_server(server, matcher, apply=True) == {}
    assert not local.exists()
