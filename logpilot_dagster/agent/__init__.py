"""LogPilot's query agent: English questions -> guarded SQL, log search, runbook RAG and catalog lookups.

``Answer`` and ``LogPilotClient`` load on first use, so ``logpilot --help`` (which registers ``agent.cli``)
does not import the model stack."""


def __getattr__(name: str):
    if name in ("Answer", "LogPilotClient"):
        from logpilot_dagster.agent import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Answer", "LogPilotClient"]
