"""A small client for any OpenAI-compatible chat-completions endpoint, configured by ``LOGPILOT_LLM_*``
environment variables and hardened against a slow, huge or malformed reply. Used by the agent (SQL drafts) and
schema discovery (format proposals); imports nothing else of LogPilot."""

from logpilot_dagster.llm.chat import (
    DEFAULT_TIMEOUT_S,
    MAX_REPLY_BYTES,
    Chat,
    LLMError,
    OpenAICompatibleChat,
    chat_from_env,
)

__all__ = ["DEFAULT_TIMEOUT_S", "MAX_REPLY_BYTES", "Chat", "LLMError", "OpenAICompatibleChat", "chat_from_env"]
