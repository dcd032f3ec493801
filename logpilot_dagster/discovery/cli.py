"""``logpilot discover PATH_OR_SOURCE [--accept]``: the subcommand the main CLI registers with ``register``."""

from __future__ import annotations

import argparse
import getpass

from logpilot_dagster.discovery.samples import DEFAULT_SAMPLES
from logpilot_dagster.discovery.service import run_discovery
from logpilot_dagster.settings import LogPilotPaths


def cmd_discover(args: argparse.Namespace) -> int:
    paths = LogPilotPaths.from_env(args.home).ensure()
    outcome = run_discovery(paths, args.target, args.samples, args.name,
                            accept_by=(args.by or getpass.getuser()) if args.accept else None)
    print(outcome.report())
    if args.accept and outcome.rule_id:
        print(f"accepted {outcome.rule_id}: declared in {paths.sources_file}, recorded in format_rule_versions "
              f"and format_rules; the discovered_rules sensor re-parses its parked lines")
    return 0 if outcome.found.accepted else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("discover", help="propose (and with --accept, declare) a format rule for an "
                                               "unknown source: a path, an undeclared landing folder or a live key")
    p.add_argument("target", help="a file/dir, an undeclared landing-zone folder, or a source with queued lines")
    p.add_argument("--name", help="source name to declare (default: from the path or the key)")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="lines to sample (half held out)")
    p.add_argument("--accept", action="store_true", help="write the validated rule to sources.yaml + registry")
    p.add_argument("--by", help="who accepts (default: the current user)")
    p.set_defaults(func=cmd_discover)
