"""``logpilot purge``: plug into the ``logpilot`` argparse CLI with :func:`register`."""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime


def _utc(text: str) -> datetime:
    """An ISO time as naive UTC (the warehouse's ``ts``)."""
    from datetime import timezone

    value = datetime.fromisoformat(text)
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def landing_store(paths):
    """The landing zone as the backfill sees it: ``LOGPILOT_LANDING_BUCKET`` on S3, else the local directory."""
    from logpilot_dagster.storage.object_store import LocalObjectStore, S3ObjectStore

    bucket = os.environ.get("LOGPILOT_LANDING_BUCKET")
    if not bucket:
        return LocalObjectStore(paths.landing_zone)
    import boto3

    client = boto3.client("s3", endpoint_url=os.environ.get("LOGPILOT_S3_ENDPOINT_URL") or None)
    return S3ObjectStore(client, bucket, os.environ.get("LOGPILOT_LANDING_PREFIX", ""))


def cmd_purge(args: argparse.Namespace) -> int:
    from logpilot_dagster.lifecycle.matching import PurgeRequest
    from logpilot_dagster.lifecycle.purge import purge
    from logpilot_dagster.lifecycle.receipts import format_receipt
    from logpilot_dagster.settings import LogPilotPaths

    try:
        request = PurgeRequest(email=args.email, value=args.value, subject_id=args.subject_id, service=args.service,
                               start=_utc(args.start) if args.start else None,
                               end=_utc(args.end) if args.end else None)
    except ValueError as exc:
        print(f"logpilot purge: {exc}")
        return 2
    paths = LogPilotPaths.from_env(args.home)
    receipt = purge(paths, request, landing_store(paths), include_landing=args.include_landing,
                    dry_run=args.dry_run)
    print(json.dumps(receipt, indent=1, sort_keys=True) if args.json else format_receipt(receipt))
    return 1 if receipt["residual"] or receipt["objects"]["pending_restore"] else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("purge", help="right to be forgotten: remove a subject from every tier, with a receipt")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="an email address (its pseudonym tokens under every key, and the literal)")
    who.add_argument("--subject-id", dest="subject_id", help="a whole-word identifier, e.g. a user id")
    who.add_argument("--value", help="any literal value")
    who.add_argument("--service", help="delete this service's rows with --from <= ts < --to")
    p.add_argument("--from", dest="start", help="ISO time (UTC unless it has an offset)")
    p.add_argument("--to", dest="end", help="ISO time, exclusive")
    p.add_argument("--include-landing", action="store_true", help="also rewrite landing-zone files holding it")
    p.add_argument("--dry-run", action="store_true", help="report what would be touched; change nothing")
    p.add_argument("--json", action="store_true", help="print the receipt as JSON")
    p.set_defaults(func=cmd_purge)
