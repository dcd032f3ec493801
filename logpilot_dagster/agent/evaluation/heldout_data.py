"""A held-out sample warehouse: other services, header formats, catalog and years than the demo's.

Eight services (two share the word "orders", so "orders" alone is ambiguous), seven header formats the demo
does not use (slash dates, BGL and HealthApp stamps, Apache-style ``%d/%b/%Y``, yearless syslog without a
level, one-letter levels, JSON and logfmt with other keys), growth over the years, a busy fourth quarter, and
a few bad lines per year whose data time is known. ``write_landing`` returns what it generated.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from logpilot_dagster.ingest.sources import SourceSpec, write_sources

YEARS = (2018, 2019, 2020)
#: service -> (department, owner, criticality, weight, level weights INFO/WARN/ERROR/FATAL)
CATALOG = {
    "ledger-core": ("Finance", "ledger-oncall@heldout.example", "critical", 4, (80, 12, 7, 1)),
    "orders-svc": ("Commerce", "orders-team@heldout.example", "high", 5, (85, 9, 5, 1)),
    "orders-archiver": ("Commerce", "orders-team@heldout.example", "low", 1, (90, 6, 3, 1)),
    "media-transcoder": ("Media", "media-eng@heldout.example", "low", 2, (70, 15, 13, 2)),
    "user-profile": ("Accounts", "accounts@heldout.example", "high", 3, (88, 8, 3, 1)),
    "fraud-scorer": ("Risk", "risk-oncall@heldout.example", "critical", 2, (75, 14, 10, 1)),
    "mail-relay": ("Platform", "platform@heldout.example", "medium", 2, (84, 10, 6, 0)),
    "cache-cluster": ("Platform", "platform@heldout.example", "medium", 3, (86, 9, 4, 1)),
}
#: A year's share of each service's lines (growth over time) and a month profile (busy Q4).
GROWTH = 1.3  # each year logs this many times the previous one
MONTH_WEIGHT = (7, 6, 8, 8, 9, 8, 7, 7, 9, 10, 11, 12)


def _n(r: random.Random, lo: int, hi: int) -> int:
    return r.randrange(lo, hi)


MESSAGES = {
    "ledger-core": {
        "INFO": ["Posted journal entry JE-{n} to account {n}", "Balance snapshot written for book {n}"],
        "WARN": ["Reconciliation lag {n} seconds on book {n}"],
        "ERROR": ["Double entry mismatch on journal JE-{n}", "Ledger lock wait timeout on account {n}"],
        "FATAL": ["Ledger storage corrupted, halting postings"],
    },
    "orders-svc": {
        "INFO": ["Order {n} placed with {n} items", "Order {n} shipped via carrier {n}"],
        "WARN": ["Inventory reservation slow for order {n}"],
        "ERROR": ["Order {n} rejected: payment authorization declined", "Order {n} stuck in pending state"],
        "FATAL": ["Order database unreachable, aborting"],
    },
    "orders-archiver": {
        "INFO": ["Archived {n} orders to cold storage"],
        "WARN": ["Archive batch {n} took {n} seconds"],
        "ERROR": ["Archive upload failed for batch {n}"],
        "FATAL": ["Archive bucket missing, exiting"],
    },
    "media-transcoder": {
        "INFO": ["Transcoded asset {n} to 1080p in {n} ms", "Thumbnail generated for asset {n}"],
        "WARN": ["GPU queue depth {n} above threshold"],
        "ERROR": ["Codec error decoding asset {n}: corrupt frame", "Transcode job {n} exceeded time budget"],
        "FATAL": ["Encoder process crashed with signal 6"],
    },
    "user-profile": {
        "INFO": ["Profile {n} updated", "Avatar uploaded for profile {n}"],
        "WARN": ["Profile cache miss ratio {n} percent"],
        "ERROR": ["Profile {n} validation failed: invalid locale"],
        "FATAL": ["Profile store connection lost"],
    },
    "fraud-scorer": {
        "INFO": ["Scored transaction {n} risk {n}", "Model version {n} loaded"],
        "WARN": ["Feature store latency {n} ms"],
        "ERROR": ["Scoring failed for transaction {n}: feature vector incomplete", "Rule engine timeout for transaction {n}"],
        "FATAL": ["Model file unreadable, scoring disabled"],
    },
    # No level field in this format: the level is inferred from the words of the message.
    "mail-relay": {
        "INFO": ["Relayed message {n} to mx{n}.example.net", "Queue flushed {n} messages"],
        "WARN": ["Deferred message {n}: mailbox too many connections"],
        "ERROR": ["Delivery error for message {n}: connection refused"],
        "FATAL": [],
    },
    "cache-cluster": {
        "INFO": ["Key space {n} rebalanced across {n} nodes", "Snapshot {n} saved"],
        "WARN": ["Eviction rate {n} keys per second"],
        "ERROR": ["Replica {n} failed to sync with primary"],
        "FATAL": ["Cluster quorum lost"],
    },
}


def _message(service: str, level: str, r: random.Random) -> str:
    text = r.choice(MESSAGES[service][level])
    while "{n}" in text:
        text = text.replace("{n}", str(_n(r, 1, 99999)), 1)
    return text


def _ledger(ts, level, msg, r):  # <Date> <Time> <Level> <Component> - <Content>, %Y/%m/%d %H:%M:%S
    return f"{ts:%Y/%m/%d %H:%M:%S} {level} ledger.Posting - {msg}"


def _orders(ts, level, msg, r):  # JSON with other keys than the demo's
    return json.dumps({"time": f"{ts:%Y-%m-%dT%H:%M:%S}.{ts.microsecond // 1000:03d}Z", "severity": level,
                       "component": "orders", "message": msg})


def _archiver(ts, level, msg, r):  # <Timestamp> <Level> <Content>, BGL-style %Y-%m-%d-%H.%M.%S.%f
    return f"{ts:%Y-%m-%d-%H.%M.%S}.{ts.microsecond:06d} {level} {msg}"


def _media(ts, level, msg, r):  # [<Timestamp>] <Level> <Content>, %d/%b/%Y:%H:%M:%S %z
    return f"[{ts:%d/%b/%Y:%H:%M:%S} +0000] {level} {msg}"


def _profile(ts, level, msg, r):  # logfmt with time=/lvl=
    return f'time={ts:%Y-%m-%dT%H:%M:%S}.{ts.microsecond // 1000:03d}Z lvl={level.lower()} msg="{msg}"'


def _fraud(ts, level, msg, r):  # <Timestamp>|<Component>|<Level>|<Content>, HealthApp-style %Y%m%d-%H:%M:%S:%g
    return f"{ts:%Y%m%d-%H:%M:%S}:{ts.microsecond // 1000:03d}|scorer|{level}|{msg}"


def _mail(ts, level, msg, r):  # syslog without year or level
    return f"{ts:%b} {ts.day:2d} {ts:%H:%M:%S} relay-{_n(r, 1, 4)} postfix: {msg}"


def _cache(ts, level, msg, r):  # <Date> <Time> <Level> <Content>, %y/%m/%d %H:%M:%S, short level words
    word = {"INFO": "I", "WARN": "W", "ERROR": "E", "FATAL": "F"}[level]
    return f"{ts:%y/%m/%d %H:%M:%S} {word} {msg}"


LAYOUTS = {
    "ledger-core": (r"<Date> <Time> <Level> <Component> - <Content>", _ledger),
    "orders-svc": ("jsonl", _orders),
    "orders-archiver": (r"<Timestamp> <Level> <Content>", _archiver),
    "media-transcoder": (r"\[<Timestamp>\] <Level> <Content>", _media),
    "user-profile": ("logfmt", _profile),
    "fraud-scorer": (r"<Timestamp>\|<Component>\|<Level>\|<Content>", _fraud),
    "mail-relay": (r"<Month> <Date> <Time> <Node> <Component>: <Content>", _mail),
    "cache-cluster": (r"<Date> <Time> <Level> <Content>", _cache),
}


def write_landing(home: Path, lines: int = 40_000, seed: int = 2018, years: tuple[int, ...] = YEARS) -> dict:
    """Landing files (one per service and half year), bad files, ``sources.yaml``, ``system_catalog.csv``."""
    r = random.Random(seed)
    shares = [GROWTH**i for i in range(len(years))]
    year_share = {year: share / sum(shares) for year, share in zip(years, shares)}
    landing = home / "landing_zone"
    truth: Counter = Counter()
    weight_sum = sum(c[3] for c in CATALOG.values())
    for service, (_, _, _, weight, level_weights) in CATALOG.items():
        render = LAYOUTS[service][1]
        levels = [lv for lv, w in zip(("INFO", "WARN", "ERROR", "FATAL"), level_weights) if w and MESSAGES[service][lv]]
        weights = [w for lv, w in zip(("INFO", "WARN", "ERROR", "FATAL"), level_weights) if lv in levels]
        for year in years:
            n = int(lines * weight / weight_sum * year_share[year])
            months = r.choices(range(1, 13), weights=MONTH_WEIGHT, k=n)
            stamps = sorted(
                datetime(year, m, 1) + timedelta(seconds=r.random() * ((datetime(year + (m == 12), m % 12 + 1, 1)
                                                                         - datetime(year, m, 1)).total_seconds()))
                for m in months
            )
            for half in (0, 1):
                chunk = [t for t in stamps if (t.month > 6) == bool(half)]
                out = []
                for ts in chunk:
                    level = r.choices(levels, weights=weights)[0]
                    out.append(render(ts, level, _message(service, level, r), r))
                    truth[f"{service}|{year}|{level}"] += 1
                path = landing / service / str(year) / f"{service}.{year}h{half + 1}.log"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("\n".join(out) + "\n", encoding="utf-8")
    quarantined = _bad_files(landing, years, truth)
    specs = [SourceSpec.from_dict({"name": s, "glob": f"{s}/**/*.log", "service": s, "format": fmt})
             for s, (fmt, _) in LAYOUTS.items()]
    write_sources(home / "sources.yaml", specs)
    with open(home / "system_catalog.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["system_name", "department", "owner_email", "criticality"])
        for service, (department, owner, criticality, *_rest) in CATALOG.items():
            writer.writerow([service, department, owner, criticality])
    return {"lines": dict(truth), "quarantined_by_year": quarantined}


def _bad_files(landing: Path, years: tuple[int, ...], truth: Counter) -> dict:
    """Lines the pipeline must quarantine, filed under the first, second and last year (3, 5 and 2 of them).

    Some carry a timestamp in the source's layout (their data time), the others only the year of their path.
    The two good lines around them are added to ``truth``.
    """
    first, second, last = years[0], years[1 % len(years)], years[-1]
    bad = {
        first: ("ledger-core", [f"{first}/03/04 10:00:00 ledger.Posting without a level", "", "garbage ### 1"]),
        second: ("fraud-scorer", [f"{second}1107-11:00:00:000 scorer missing fields", "!!", "",
                                  f"{second}0212-09:00:00:000|x", "truncated"]),
        last: ("cache-cluster", [f"{last % 100:02d}/08/15 nothing-else-here-at-all", "??"]),
    }
    counts: Counter = Counter()
    for year, (service, lines) in bad.items():
        path = landing / service / str(year) / f"{service}.{year}-bad.log"
        good = LAYOUTS[service][1](datetime(year, 6, 1, 12), "INFO", _message(service, "INFO", random.Random(year)),
                                   random.Random(year))
        path.write_text("\n".join([good, *lines, good]) + "\n", encoding="utf-8")
        counts[str(year)] += len(lines)
        truth[f"{service}|{year}|INFO"] += 2
    return dict(counts)
