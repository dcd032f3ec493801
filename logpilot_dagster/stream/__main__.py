"""``python -m logpilot_dagster.stream broker|collect|produce|ingest`` (the same handlers as ``logpilot ...``)."""

import argparse
import sys

from logpilot_dagster.stream.cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m logpilot_dagster.stream")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
