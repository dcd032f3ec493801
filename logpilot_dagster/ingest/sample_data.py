"""A realistic sample landing zone: eight services, five years, real-world header formats, a known share of PII.

Each service writes its own format (log4j, JSON lines, Apache error log, PostgreSQL, syslog without a year,
logfmt, Elasticsearch, Spark) and its own failure modes, so templates, quarantine, PII masking and the agent's
questions all have something real to work on. A few deliberately bad files exercise the quarantine.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from logpilot_dagster.ingest.sources import SourceSpec, write_sources

YEARS = tuple(range(2021, 2026))
LEVEL_WEIGHTS = {"INFO": 0.82, "WARN": 0.1, "ERROR": 0.07, "FATAL": 0.01}


def _ip(r: random.Random) -> str:
    return f"{r.choice([10, 172, 192, 34, 52, 81])}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"


def _email(r: random.Random) -> str:
    return f"{r.choice(['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace'])}.{r.randrange(999)}@" \
           f"{r.choice(['example.com', 'mail.test', 'corp.example'])}"


def _card(r: random.Random) -> str:
    """A Luhn-valid 16-digit Visa number, grouped by spaces or dashes."""
    digits = [4] + [r.randrange(10) for _ in range(14)]
    total = sum(d if i % 2 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(reversed(digits)))
    digits.append((10 - total % 10) % 10)
    s = "".join(map(str, digits))
    sep = r.choice([" ", "-", ""])
    return sep.join(s[i:i + 4] for i in range(0, 16, 4))


def _ssn(r: random.Random) -> str:
    return f"{r.randrange(1, 600):03d}-{r.randrange(1, 99):02d}-{r.randrange(1, 9999):04d}"


Msg = Callable[[random.Random], str]
# service -> level -> message makers. The PII-bearing makers are marked in PII_MESSAGES below.
MESSAGES: dict[str, dict[str, list[Msg]]] = {
    "payments-api": {
        "INFO": [lambda r: f"Charge {r.randrange(10**9)} captured for order ORD-{r.randrange(10**6)} amount {r.randrange(1, 900)}.{r.randrange(100):02d} USD",
                 lambda r: f"Refund issued for order ORD-{r.randrange(10**6)} amount {r.randrange(1, 300)}.00 USD",
                 lambda r: f"Payment method tokenized for customer {_email(r)}"],
        "WARN": [lambda r: f"Payment gateway slow response {r.randrange(800, 5000)} ms from provider stripe",
                 lambda r: f"Retrying charge {r.randrange(10**9)} attempt {r.randrange(2, 5)} of 5"],
        "ERROR": [lambda r: f"Charge failed for order ORD-{r.randrange(10**6)}: card declined (card {_card(r)})",
                  lambda r: f"Payment gateway timeout after {r.randrange(5000, 30000)} ms",
                  lambda r: f"KYC verification failed for SSN {_ssn(r)}",
                  lambda r: f"Connection pool exhausted (active={r.randrange(40, 51)}, max=50)"],
        "FATAL": [lambda r: "Ledger write failed: database is read-only, shutting down worker"],
    },
    "auth-service": {
        "INFO": [lambda r: f"Login succeeded for user {_email(r)} from {_ip(r)}",
                 lambda r: f"Token refreshed for session {r.randrange(16**8):08x}",
                 lambda r: f"Logout for user id {r.randrange(10**6)}"],
        "WARN": [lambda r: f"Token expired for session {r.randrange(16**8):08x}",
                 lambda r: f"Rate limit exceeded for client {_ip(r)} ({r.randrange(100, 900)} req/min)"],
        "ERROR": [lambda r: f"Login failed for user {_email(r)} from {_ip(r)}: bad password",
                  lambda r: f"JWT signature invalid for key id k{r.randrange(100)}"],
        "FATAL": [lambda r: "Signing key store unavailable, refusing all logins"],
    },
    "checkout-web": {
        "INFO": [lambda r: f"Cart {r.randrange(10**7)} checkout completed in {r.randrange(80, 900)} ms",
                 lambda r: f"GET /checkout/step/{r.randrange(1, 4)} 200 from {_ip(r)}"],
        "WARN": [lambda r: f"Slow render of /checkout/summary: {r.randrange(1000, 4000)} ms"],
        "ERROR": [lambda r: f"upstream timed out (110: Connection timed out) while reading response header from upstream payments-api after {r.randrange(30, 60)} s",
                  lambda r: f"502 bad gateway for POST /checkout/pay client {_ip(r)}"],
        "FATAL": [lambda r: "worker process exited on signal 11"],
    },
    "inventory-db": {
        "INFO": [lambda r: f"checkpoint complete: wrote {r.randrange(100, 9000)} buffers ({r.randrange(1, 60)}.{r.randrange(10)}%)",
                 lambda r: f"automatic vacuum of table inventory.public.stock_{r.randrange(1, 9)}: index scans: {r.randrange(0, 3)}"],
        "WARN": [lambda r: f"slow query: duration: {r.randrange(1000, 20000)} ms statement: SELECT * FROM stock WHERE sku = ${r.randrange(1, 4)}"],
        "ERROR": [lambda r: f"deadlock detected: process {r.randrange(1000, 9999)} waits for ShareLock on transaction {r.randrange(10**6)}",
                  lambda r: f"too many connections for role app_rw ({r.randrange(100, 120)} of 100)"],
        "FATAL": [lambda r: "could not write to file pg_wal/xlogtemp: No space left on device"],
    },
    "edge-gateway": {
        "INFO": [lambda r: f"{_ip(r)} GET /api/v{r.randrange(1, 3)}/orders 200 {r.randrange(1, 300)}ms",
                 lambda r: f"Health check passed for backend app-{r.randrange(1, 9)}"],
        "WARN": [lambda r: f"429 too many requests from {_ip(r)} on /api/v1/login"],
        "ERROR": [lambda r: f"TLS handshake failed with {_ip(r)}: unknown certificate authority",
                  lambda r: f"backend app-{r.randrange(1, 9)} is DOWN, reason: Layer4 connection problem"],
        "FATAL": [lambda r: "no backend available for frontend public_https"],
    },
    "notification-worker": {
        "INFO": [lambda r: f"Email sent to {_email(r)} template order_confirmation",
                 lambda r: f"Push notification delivered to device {r.randrange(16**10):010x}"],
        "WARN": [lambda r: f"Queue backlog growing: {r.randrange(1000, 90000)} messages pending"],
        "ERROR": [lambda r: f"SMTP 451 temporary failure delivering to {_email(r)}",
                  lambda r: f"Webhook POST to https://hooks.example.com/{r.randrange(1000)} failed with status 500"],
        "FATAL": [lambda r: "Lost connection to message broker, exiting"],
    },
    "search-indexer": {
        "INFO": [lambda r: f"merged segment [_{r.randrange(9999)}] of {r.randrange(10, 900)}mb in {r.randrange(1, 90)}s",
                 lambda r: f"shard [products][{r.randrange(0, 5)}] relocated to node-{r.randrange(1, 6)}"],
        "WARN": [lambda r: f"[gc][{r.randrange(10**5)}] overhead, spent [{r.randrange(1, 9)}.{r.randrange(10)}s] collecting in the last [{r.randrange(5, 10)}s]"],
        "ERROR": [lambda r: "java.lang.OutOfMemoryError: Java heap space",
                  lambda r: f"failed to index document {r.randrange(10**8)} into [products]: mapper_parsing_exception"],
        "FATAL": [lambda r: "fatal error in thread [elasticsearch[node-1][write]], exiting"],
    },
    "data-pipeline": {
        "INFO": [lambda r: f"Job {r.randrange(10**5)} finished: ResultStage {r.randrange(100)} took {r.randrange(1, 900)}.{r.randrange(1000):03d} s",
                 lambda r: f"Starting task {r.randrange(100)}.0 in stage {r.randrange(100)}.0 on executor {r.randrange(1, 30)}"],
        "WARN": [lambda r: f"Lost task {r.randrange(100)}.0 in stage {r.randrange(100)}.0: FetchFailed"],
        "ERROR": [lambda r: f"Job {r.randrange(10**5)} failed: java.io.IOException: No space left on device",
                  lambda r: f"Executor {r.randrange(1, 30)} lost: Container killed by YARN for exceeding memory limits"],
        "FATAL": [lambda r: "SparkContext shut down after driver OOM"],
    },
}
WEIGHTS = {"payments-api": 3, "auth-service": 3, "checkout-web": 2, "inventory-db": 1, "edge-gateway": 3,
           "notification-worker": 1, "search-indexer": 1, "data-pipeline": 1}


@dataclass(frozen=True)
class Layout:
    """How a service writes one line, and the source rule that reads it back."""

    format: str
    render: Callable[[datetime, str, str, str, random.Random], str]
    gz: bool = False
    year_from: str = "path"


def _log4j(ts, level, comp, msg, r):
    return f"{ts:%Y-%m-%d %H:%M:%S},{ts.microsecond // 1000:03d} {level} [http-nio-8080-exec-{r.randrange(1, 20)}] {comp}: {msg}"


def _jsonl(ts, level, comp, msg, r):
    return json.dumps({"ts": f"{ts:%Y-%m-%dT%H:%M:%S}.{ts.microsecond // 1000:03d}Z", "level": level.lower(),
                       "logger": comp, "msg": msg})


def _apache(ts, level, comp, msg, r):
    return f"[{ts:%a %b %d %H:%M:%S %Y}] [{ {'INFO': 'notice', 'WARN': 'warn', 'ERROR': 'error', 'FATAL': 'crit'}[level]}] {msg}"


def _postgres(ts, level, comp, msg, r):
    pg = {"INFO": "LOG", "WARN": "WARNING", "ERROR": "ERROR", "FATAL": "FATAL"}[level]
    return f"{ts:%Y-%m-%d %H:%M:%S}.{ts.microsecond // 1000:03d} UTC [{r.randrange(1000, 30000)}] {pg}:  {msg}"


def _syslog(ts, level, comp, msg, r):
    return f"{ts:%b} {ts.day:2d} {ts:%H:%M:%S} gw-{r.randrange(1, 4):02d} haproxy[{r.randrange(1000, 9000)}]: {msg}"


def _logfmt(ts, level, comp, msg, r):
    escaped = msg.replace('"', '\\"')
    return f'ts={ts:%Y-%m-%dT%H:%M:%S}.{ts.microsecond // 1000:03d}Z level={level.lower()} logger={comp} msg="{escaped}"'


def _elastic(ts, level, comp, msg, r):
    return f"[{ts:%Y-%m-%dT%H:%M:%S},{ts.microsecond // 1000:03d}][{level:<5}][{comp}] [node-{r.randrange(1, 4)}] {msg}"


def _spark(ts, level, comp, msg, r):
    return f"{ts:%y/%m/%d %H:%M:%S} {level} {comp}: {msg}"


LAYOUTS = {
    "payments-api": Layout(r"<Date> <Time> <Level> \[<Thread>\] <Component>: <Content>", _log4j),
    "auth-service": Layout("jsonl", _jsonl),
    "checkout-web": Layout(r"\[<Time>\] \[<Level>\] <Content>", _apache, gz=True),
    "inventory-db": Layout(r"<Date> <Time> <TZ> \[<Pid>\] <Level>:  <Content>", _postgres),
    "edge-gateway": Layout(r"<Month> <Date> <Time> <Node> <Component>\[<Pid>\]: <Content>", _syslog),
    "notification-worker": Layout("logfmt", _logfmt),
    "search-indexer": Layout(r"\[<Date>\]\[<Level>\]\[<Component>\] \[<Node>\] <Content>", _elastic),
    "data-pipeline": Layout(r"<Date> <Time> <Level> <Component>: <Content>", _spark),
}
COMPONENTS = {
    "payments-api": ["com.acme.payments.ChargeService", "com.acme.payments.RefundService"],
    "auth-service": ["auth.login", "auth.token"], "checkout-web": ["web"], "inventory-db": ["postgres"],
    "edge-gateway": ["haproxy"], "notification-worker": ["notify.email", "notify.push"],
    "search-indexer": ["o.e.i.IndexService", "o.e.m.j.JvmGcMonitorService"],
    "data-pipeline": ["scheduler.DAGScheduler", "storage.BlockManager"],
}


def source_specs() -> list[SourceSpec]:
    """Source declarations for the sample landing zone (what ``sources.yaml`` holds)."""
    return [SourceSpec.from_dict({"name": s, "glob": f"{s}/**/*.log*", "service": s, "format": lay.format,
                                  "year_from": lay.year_from}) for s, lay in LAYOUTS.items()]


def render_line(service: str, ts: datetime, r: random.Random) -> tuple[str, str]:
    """One line of ``service`` at ``ts``: (level, line)."""
    level = r.choices(list(LEVEL_WEIGHTS), weights=list(LEVEL_WEIGHTS.values()))[0]
    msg = r.choice(MESSAGES[service][level])(r)
    return level, LAYOUTS[service].render(ts, level, r.choice(COMPONENTS[service]), msg, r)


def _write(path: Path, lines: list[str], gz: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data, compresslevel=1) if gz else data)


def write_landing_zone(landing: Path, total_lines: int = 3_000_000, years: tuple[int, ...] = YEARS,
                       seed: int = 7, bad_files: bool = True) -> dict:
    """Write the sample files (one per service, year and quarter); returns a manifest of what was written."""
    r = random.Random(seed)
    weight_sum = sum(WEIGHTS.values())
    manifest = {"lines": 0, "files": 0, "by_service": {}, "bad_files": {}}
    for service, layout in LAYOUTS.items():
        per_year = max(8, total_lines * WEIGHTS[service] // weight_sum // len(years))
        for year in years:
            for quarter in range(4):
                start = datetime(year, 1 + 3 * quarter, 1, tzinfo=timezone.utc)
                span = (datetime(year + (quarter == 3), 1 + 3 * ((quarter + 1) % 4), 1, tzinfo=timezone.utc)
                        - start).total_seconds()
                n = per_year // 4
                offsets = sorted(r.random() * span for _ in range(n))
                lines = [render_line(service, start + timedelta(seconds=o), r)[1] for o in offsets]
                suffix = ".log.gz" if layout.gz else ".log"
                _write(landing / service / str(year) / f"{service}-{year}-q{quarter + 1}{suffix}", lines, layout.gz)
                manifest["lines"] += n
                manifest["files"] += 1
                manifest["by_service"][service] = manifest["by_service"].get(service, 0) + n
    if bad_files:
        manifest["bad_files"] = write_bad_files(landing, years[len(years) // 2])
    return manifest


def write_bad_files(landing: Path, year: int) -> dict:
    """Files that must end up in quarantine, with the reasons expected for them."""
    r = random.Random(year)
    good = [render_line("payments-api", datetime(year, 6, 1, 12, i, tzinfo=timezone.utc), r)[1] for i in range(3)]
    mixed = landing / "payments-api" / str(year) / f"payments-api-{year}-bad.log"
    mixed.parent.mkdir(parents=True, exist_ok=True)
    mixed.write_bytes(("\n".join(good[:2]) + "\n").encode() + b"\xff\xfe not utf-8 \xc3\x28\n"
                      + b"x" * (70 * 1024) + b"\n" + b"this line has no header at all\n\n"
                      + (good[2] + "\n").encode())
    (landing / "payments-api" / str(year) / f"payments-api-{year}-empty.log").write_bytes(b"")
    whole = gzip.compress(("\n".join(render_line("checkout-web", datetime(year, 7, 1, 0, 0, i % 60,
                                                                         tzinfo=timezone.utc), r)[1]
                                     for i in range(2000)) + "\n").encode())
    truncated = landing / "checkout-web" / str(year) / f"checkout-web-{year}-truncated.log.gz"
    truncated.parent.mkdir(parents=True, exist_ok=True)
    truncated.write_bytes(whole[: len(whole) * 2 // 3])
    undeclared = landing / "legacy-batch" / str(year) / "legacy-batch.log"
    undeclared.parent.mkdir(parents=True, exist_ok=True)
    undeclared.write_text("BATCH 0001 started\nBATCH 0001 finished\n")
    return {str(mixed.relative_to(landing)): ["undecodable_utf8", "line_too_long", "no_format_match", "blank_line"],
            f"payments-api/{year}/payments-api-{year}-empty.log": ["empty_file"],
            str(truncated.relative_to(landing)): ["truncated_gzip"],
            str(undeclared.relative_to(landing)): ["no_source_declared"]}


def write_sample_home(home: Path, total_lines: int = 3_000_000, years: tuple[int, ...] = YEARS,
                      bad_files: bool = True) -> dict:
    """Landing zone plus ``sources.yaml`` under a LOGPILOT_HOME."""
    manifest = write_landing_zone(home / "landing_zone", total_lines, years, bad_files=bad_files)
    write_sources(home / "sources.yaml", source_specs())
    return manifest
