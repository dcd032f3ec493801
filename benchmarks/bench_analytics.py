"""Template analytics detectors against a generated history with injected incidents (ground truth).

History: ``--days`` (default 90) of hourly counts for ``--services`` x ``--templates`` templates, each with a
daily rhythm (busy working hours), a weekly one (quieter weekends) and Poisson noise; one template per
service is an error template. Incidents are injected at random in the last ``--eval-days`` and recorded:

- spikes: x3 to x20 for 10 to 60 minutes (on top of the hourly count of the hour they fall in);
- silences: a steady template logs nothing for 1 to 3 hours;
- error-share jumps: a service's error template logs as many lines as all its others for an hour;
- new templates: templates that first appear after T1.

Every hour of the evaluation days is scored with the default thresholds (``AnomalySettings()``) and every
alert is matched against the incidents. Prints precision and recall per kind, false alerts per service-day
on incident-free days, and the cost of one refresh (series update + detectors), which bounds the time from a
committed live row to its alert together with the schedule's period.

    uv run python benchmarks/bench_analytics.py [--days 90] [--eval-days 14] [--seed 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from logpilot_dagster.analytics.anomalies import AnomalySettings, detect_anomalies
from logpilot_dagster.analytics.new_templates import detect_new_templates
from logpilot_dagster.analytics.series import update_series
from logpilot_dagster.storage.warehouse import ensure_schema

START = datetime(2025, 6, 2)  # a Monday


def rhythm(hour: datetime) -> float:
    daily = 1.0 if 8 <= hour.hour <= 19 else 0.35
    weekly = 0.5 if hour.weekday() >= 5 else 1.0
    return daily * weekly


def build(args, rng):
    hours = [START + timedelta(hours=h) for h in range(24 * args.days)]
    factor = np.array([rhythm(h) for h in hours])
    eval_from = 24 * (args.days - args.eval_days)
    services = [f"svc{i}" for i in range(args.services)]
    base = {(s, f"{s}-t{j}"): rng.uniform(5, 80) for s in services for j in range(args.templates)}
    counts = {key: rng.poisson(rate * factor).astype(float) for key, rate in base.items()}
    truth = []  # (kind, service, template or '*', hour index)
    for _ in range(args.incidents):
        (service, template), kind = list(base)[rng.integers(len(base))], rng.choice(["spike", "drop", "error_share"])
        h = int(rng.integers(eval_from, len(hours)))
        if kind == "spike":
            mult, minutes = rng.uniform(3, 20), int(rng.integers(10, 61))
            counts[(service, template)][h] += rng.poisson((mult - 1) * base[(service, template)] * factor[h]
                                                          * minutes / 60)
            truth.append(("spike", service, template, h))
        elif kind == "drop":
            length = int(rng.integers(1, 4))
            counts[(service, template)][h:h + length] = 0
            truth.extend(("drop", service, template, k) for k in range(h, min(h + length, len(hours))))
        else:
            others = sum(counts[(service, f"{service}-t{j}")][h] for j in range(1, args.templates))
            counts[(service, f"{service}-t0")][h] = others
            truth.append(("error_share", service, "*", h))
    return hours, services, counts, truth, eval_from


def load(con, hours, counts, services):
    rows = defaultdict(list)
    for (service, template), series in counts.items():
        for h, n in enumerate(series):
            if n:
                for col, value in zip(("template_id", "service", "hour", "lines", "errors"),
                                      (template, service, hours[h], int(n), int(n) if template.endswith("-t0") else 0)):
                    rows[col].append(value)
    table = pa.table({"origin": ["backfill:2025"] * len(rows["hour"]), **rows, "bytes": [0] * len(rows["hour"])})
    con.register("gen", table)
    con.execute("INSERT INTO template_hourly SELECT origin, template_id, service, hour, lines, errors, bytes FROM gen")
    con.executemany("INSERT INTO system_catalog VALUES (?, 'x', 'owner@example.com', 'high')", [[s] for s in services])


def evaluate(con, hours, truth, eval_from):
    alerts = []
    start = time.perf_counter()
    for h in range(eval_from, len(hours)):
        for event in detect_anomalies(con, AnomalySettings(), window_end=hours[h] + timedelta(hours=1)):
            alerts.append((event["kind"], event["service"], event["template_id"], h))
    per_window = (time.perf_counter() - start) / (len(hours) - eval_from)
    return alerts, per_window


def score(alerts, truth, services, eval_days, eval_from):
    """Precision and recall per kind. An error template's spike inside an error-share incident, and an
    error-share jump during a spike of the error template, are one incident seen from its other side: neither
    a hit nor a false alert."""
    jumps = {(t[1], t[3]) for t in truth if t[0] == "error_share"}
    error_spikes = {(t[1], t[3]) for t in truth if t[0] == "spike" and t[2].endswith("-t0")}
    alerts = [a for a in alerts if not (a[0] == "spike" and a[2].endswith("-t0") and (a[1], a[3]) in jumps)
              and not (a[0] == "error_share" and (a[1], a[3]) in error_spikes)]
    report = {}
    for kind in ("spike", "drop", "error_share"):
        want = {t for t in truth if t[0] == kind}
        got = {a for a in alerts if a[0] == kind}
        hit = len(want & got)
        report[kind] = (hit / len(got) if got else float("nan"), hit / len(want) if want else float("nan"),
                        len(want), len(got))
    incident_days = {(t[1], t[3] // 24) for t in truth}
    false = [a for a in alerts if a not in set(truth)]
    quiet = [a for a in false if (a[1], a[3] // 24) not in incident_days]
    quiet_days = len(services) * eval_days - len({d for d in incident_days if d[1] >= eval_from // 24})
    return report, len(quiet) / max(quiet_days, 1)


def new_template_check(con, hours, services, rng):
    """New templates appear after T1 among known ones: precision and recall of ``detect_new_templates``."""
    t1 = hours[-24 * 3]
    fresh = {(s, f"{s}-new{k}") for s in services for k in range(2)}
    rows = [("live", t, s, hours[-int(rng.integers(1, 24 * 3))], 3, 0, 0) for s, t in fresh]
    rows += [("live", f"{s}-t1", s, hours[-5], 40, 0, 0) for s in services]  # known templates seen live
    con.executemany("INSERT OR IGNORE INTO template_hourly VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    found = {(e["service"], e["template_id"]) for e in detect_new_templates(con, t1)}
    hit = len(found & fresh)
    return hit / len(found) if found else float("nan"), hit / len(fresh), len(fresh), len(found)


def refresh_cost(con) -> float:
    con.execute("INSERT INTO loaded_files VALUES (2025, 'x', now())")
    start = time.perf_counter()
    update_series(con)
    detect_anomalies(con, AnomalySettings())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--eval-days", type=int, default=14)
    parser.add_argument("--services", type=int, default=6)
    parser.add_argument("--templates", type=int, default=12)
    parser.add_argument("--incidents", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "bench.duckdb"))
        ensure_schema(con)
        hours, services, counts, truth, eval_from = build(args, rng)
        load(con, hours, counts, services)
        alerts, per_window = evaluate(con, hours, truth, eval_from)
        report, false_rate = score(alerts, truth, services, args.eval_days, eval_from)
        new_p, new_r, new_n, new_got = new_template_check(con, hours, services, rng)
        cost = refresh_cost(con)
        con.close()
    print(f"history: {args.days} days x {args.services} services x {args.templates} templates (hourly), "
          f"{len(truth)} incident windows in the last {args.eval_days} days; default thresholds")
    print("| kind | precision | recall | incident windows | alerts |\n|---|---|---|---|---|")
    for kind, (p, r, n, got) in report.items():
        print(f"| {kind} | {p:.2f} | {r:.2f} | {n} | {got} |")
    print(f"| new_template | {new_p:.2f} | {new_r:.2f} | {new_n} | {new_got} |")
    print(f"false alerts per service-day on incident-free days: {false_rate:.3f}")
    print(f"detectors per hourly window: {per_window * 1000:.0f} ms; one refresh (series update + detectors) "
          f"on this history: {cost:.2f} s")


if __name__ == "__main__":
    main()
