"""LogPilot's query agent: English questions -> guarded SQL, log search, runbook RAG and catalog lookups."""

__all__ = ["Answer", "LogPilotClient"]


def __getattr__(name: str):
    """``Answer`` and ``LogPilotClient`` on first use, so that importing a submodule (the SQL sandbox
    process imports only the guard) does not load the whole agent."""
    if name in __all__:
        from logpilot_dagster.agent import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
