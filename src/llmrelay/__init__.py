"""llmrelay: one API over Anthropic, OpenAI, Gemini, OpenRouter and Ollama, with per-agent
fallback chains and an exact usage-and-cost ledger."""

from .agents import Agent, load_agents
from .config import Settings, load_settings
from .relay import ChatResult, Relay, StreamDone, StreamFailed
from .routing.fallback import AttemptEvent
from .types import (
    AllLinksFailed,
    Attempt,
    ChatRequest,
    ChatResponse,
    ConfigError,
    ErrorKind,
    InvalidRequest,
    Link,
    LLMRelayError,
    Message,
    ProviderError,
    TextDelta,
    UnknownAgent,
    Usage,
)

__version__ = "0.1.0"
__all__ = [
    "Agent", "AllLinksFailed", "Attempt", "AttemptEvent", "ChatRequest", "ChatResponse", "ChatResult",
    "ConfigError", "ErrorKind", "InvalidRequest", "LLMRelayError", "Link", "Message", "ProviderError",
    "Relay", "Settings", "StreamDone", "StreamFailed", "TextDelta", "UnknownAgent", "Usage", "load_agents",
    "load_settings",
]
