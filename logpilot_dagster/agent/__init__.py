"""LogPilot's query agent: English questions -> guarded SQL, log search, runbook RAG and catalog lookups."""

from logpilot_dagster.agent.client import Answer, LogPilotClient

__all__ = ["Answer", "LogPilotClient"]
