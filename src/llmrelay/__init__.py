"""llmrelay: one API over Anthropic, OpenAI, Gemini, OpenRouter and Ollama, with per-agent
fallback chains and an exact usage-and-cost ledger."""

from .agents import Agent, load_agents
from .config import Settings, load_settings
from .relay import Relay, Run
from .types import (
    AllLinksFailed,
    Attempt,
    AttemptEvent,
    ChatRequest,
    ChatResponse,
    ConfigError,
    ErrorKind,
    InvalidRequest,
    Link,
    LLMRelayError,
    Message,
    Outcome,
    Principal,
    ProviderError,
    RateLimited,
    RequestOptions,
    TextDelta,
    UnknownAgent,
    UnknownModel,
    Usage,
)
from .version import __version__

__all__ = [
    "Agent", "AllLinksFailed", "Attempt", "AttemptEvent", "ChatRequest", "ChatResponse", "ConfigError", "ErrorKind",
    "InvalidRequest", "LLMRelayError", "Link", "Message", "Outcome", "Principal", "ProviderError", "RateLimited",
    "Relay", "RequestOptions", "Run", "Settings", "TextDelta", "UnknownAgent", "UnknownModel", "Usage",
    "__version__", "load_agents", "load_settings",
]
