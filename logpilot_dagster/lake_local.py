"""The lake profile on one machine: Postgres (``pgserver``) for the DuckLake catalog and SeaweedFS for its S3
data, both under ``LOGPILOT_HOME/lake/``, with the environment that points LogPilot at them.

``logpilot lake`` keeps them up (for ``logpilot dev`` or other shells, which take the printed environment);
``logpilot demo --profile lake`` runs the demo inside ``local_lake``.
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import contextmanager
from typing import Iterator

from logpilot_dagster.settings import LogPilotPaths

BUCKET = "lake"


@contextmanager
def local_lake(paths: LogPilotPaths) -> Iterator[dict[str, str]]:
    """Start the catalog and the S3 store, set ``LOGPILOT_PROFILE=lake`` and the lake settings in this
    process's environment (children inherit them), yield them; stop both on exit."""
    from logpilot_dagster.broker.seaweedfs import SeaweedS3
    from logpilot_dagster.storage.lake import start_local_catalog

    catalog = start_local_catalog(paths.home)
    store = SeaweedS3(paths.home / "lake" / "s3")
    try:
        store.start()
        store.ensure_bucket(BUCKET)
        socket_dir = catalog.get_postmaster_info().socket_dir
        env = {"LOGPILOT_PROFILE": "lake",
               "LOGPILOT_LAKE_CATALOG": f"postgres:host={socket_dir} dbname=postgres user=postgres",
               "LOGPILOT_LAKE_DATA": f"s3://{BUCKET}/data/", "LOGPILOT_LAKE_S3_ENDPOINT_URL": store.endpoint}
        # no AWS_* variables: a SeaweedFS started with them in its environment (the broker's) turns on auth
        os.environ.update(env)
        yield env
    finally:
        store.stop()
        catalog.cleanup()


def cmd_lake(args: argparse.Namespace) -> int:
    from logpilot_dagster.cli import use_home

    paths = use_home(args.home)
    with local_lake(paths) as env:
        print("lake profile up (Ctrl-C stops it); in another shell:")
        for name, value in env.items():
            print(f"  export {name}='{value}'")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


def register(sub) -> None:
    p = sub.add_parser("lake", help="run the lake profile's Postgres catalog and S3 store under LOGPILOT_HOME/lake")
    p.set_defaults(func=cmd_lake)
