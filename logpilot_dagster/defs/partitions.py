"""The one yearly partitioning of history (the year in progress belongs to the live stream)."""

import os

import dagster as dg

FIRST_YEAR = os.environ.get("LOGPILOT_FIRST_YEAR", "2021")

yearly_partitions = dg.TimeWindowPartitionsDefinition(start=FIRST_YEAR, fmt="%Y", cron_schedule="0 0 1 1 *")
