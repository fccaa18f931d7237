"""The unified vocabulary every layer speaks: chains and targets, who asks, what a request produced,
and, re-exported so every layer finds them here, the message parts (`content`), one provider call's
request, reply and stream events (`calls`) and the errors (`errors`).

Adapters translate these to and from one provider's wire format; nothing above the adapters
ever sees a provider's field names.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from .calls import (
    NO_SAMPLING,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Finished,
    FinishReason,
    OutputEvent,
    ReasoningDelta,
    Sampling,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageReport,
    needs_of,
)
from .content import (
    Image,
    Message,
    OutputFormat,
    Part,
    Reasoning,
    Role,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    part_to_json,
)
from .errors import (
    BudgetExceeded,
    BudgetUnavailable,
    ConfigError,
    ErrorKind,
    InvalidRequest,
    LLMRelayError,
    ProviderError,
    RateLimited,
    UnknownAgent,
    UnknownModel,
)


@dataclass(frozen=True, slots=True)
class Link:
    """One provider/model pair of a fallback chain."""

    provider: str
    model: str
    max_retries: int | None = None
    """Retries after the first attempt; None: the policy's default."""

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True, slots=True)
class ChainConfig:
    """A user's saved model preference for one agent."""

    primary: Link
    fallbacks: tuple[Link, ...] = ()
    max_tokens: int | None = None
    temperature: float | None = None

    @property
    def links(self) -> list[Link]:
        return [self.primary, *self.fallbacks]


@dataclass(frozen=True, slots=True)
class Target:
    """What a request's target (`agent:<id>`, `<provider>/<model>`, a bare model name) resolved to."""

    agent_id: str
    """The ledger's agent_id: the agent's id, or `direct` for a request that names a model."""
    links: tuple[Link, ...]
    system_prompt: str = ""
    config: ChainConfig | None = None
    """The caller's saved config for the agent, when one applied."""
    tools: tuple[Tool, ...] = ()
    """The agent's own tools."""
    output: OutputFormat | None = None
    """The agent's own output format."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is from (the user behind an API key, or the CLI's named user), with their limits."""

    user_id: str
    name: str
    is_admin: bool = False
    key_id: str = ""
    rpm_limit: int | None = None
    tpm_limit: int | None = None


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """How a request is to be served, beside its target and turns (`Relay.run`)."""

    system: str | None = None
    """The caller's system prompt; it follows the agent's own."""
    system_cache: str | None = None
    """A prompt-cache breakpoint at the end of the system prompt (`ChatRequest.system_cache`)."""
    max_tokens: int | None = None
    """None: the saved config's, else LLMRELAY_DEFAULT_MAX_TOKENS."""
    temperature: float | None = None
    stop: tuple[str, ...] = ()
    prefer_provider: str | None = None
    """Try this provider (its link in the chain, or with `prefer_model` that link) first."""
    prefer_model: str | None = None
    fallbacks: tuple[str, ...] = ()
    """More targets whose links are tried after the target's chain (OpenRouter's `models`)."""
    request_id: str | None = None
    target_field: str = "model"
    """What the caller's API calls the target, for the error that names it."""
    tools: tuple[Tool, ...] = ()
    """Added to the agent's own tools (a tool of the same name replaces the agent's)."""
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    output: OutputFormat | None = None
    """None: the agent's own output format, if it declares one; else text."""
    sampling: Sampling = NO_SAMPLING
    end_user: str | None = None


def decimal_or_none(value: object) -> Decimal | None:
    """An exact decimal from a provider's number or text ("0.00014", "1.4e-05"); None when absent,
    not a number, or not finite."""
    if value is None:
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def money(value: Decimal | None) -> str | None:
    """A plain decimal string, exact, without exponent or trailing zeros: "0.00123", "0"."""
    return None if value is None else format(value.normalize(), "f")


AttemptStatus = Literal["success", "failed", "skipped"]


@dataclass(slots=True)
class Attempt:
    """One try of one link (or one link skipped), in the order they happened.

    `position` is 1-based across the whole request: retries of a link are attempts too.
    `usage` is what the provider reported before the attempt ended, even a failed one
    (a stream cut after its first frames still cost its input tokens).
    """

    position: int
    provider: str
    model: str
    status: AttemptStatus
    link_index: int = 0
    """0-based position of the link in the chain: a success on any link but the first is a fallback."""
    latency_ms: int = 0
    error_kind: ErrorKind | None = None
    error_message: str | None = None
    usage: Usage | None = None
    finish_reason: FinishReason | None = None
    provider_cost_usd: str | None = None
    started_at: float = 0.0
    """Wall-clock seconds since the epoch (UTC) when the attempt began."""
    first_on_provider: bool = True
    """No earlier attempt of this request went to this provider (the ledger counts a provider's
    requests by it, without a distinct count over request ids)."""
    first_on_model: bool = True
    """No earlier attempt of this request went to this provider and model."""
    tool_calls: int = 0
    """How many tool calls the attempt's answer held."""
    images: int = 0
    """How many images the request sent (0 for a skipped link: nothing was sent)."""

    def to_dict(self) -> dict:
        """The `attemptedProviders` entry of the JSON shape."""
        return {
            "provider": self.provider,
            "model": self.model,
            "status": self.status,
            "errorKind": self.error_kind.value if self.error_kind else None,
            "error": self.error_message,
            "latencyMs": self.latency_ms,
        }


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who asked what: the ledger keys every attempt's row on it."""

    request_id: str
    agent_id: str
    user_id: str | None
    kind: str = "chat"
    """What the request asked for: `chat` (a conversation's next turn) or `embedding`."""
    budget_downgraded: bool = False
    """A budget kept some link of the chain from serving (the ledger rows say so)."""
    leases: tuple[str, ...] = ()
    """The budget leases the request's cost is reserved on: the ledger settles them as it writes its rows."""


class AllLinksFailed(LLMRelayError):
    """No link of the chain answered.  `attempts` says why, link by link.  `fatal` is set when
    the walk stopped early because a provider rejected the request itself (`bad_request`):
    the same request would fail identically everywhere.  `unsupported` is set when no link could
    take the request as asked (a parameter or capability every link lacks)."""

    def __init__(self, message: str, attempts: list[Attempt], fatal: ProviderError | None = None,
                 unsupported: str | None = None, refused: ErrorKind | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.fatal = fatal
        self.unsupported = unsupported
        """Set when no link was tried and some could not take the request: what the request asks for
        that they lack (a name of `ChatRequest.needs`, e.g. `seed`, `response_format=json_schema`)."""
        self.refused = refused
        """Set when every link that was called refused the request itself (its context window, its content,
        a parameter that model cannot take) and the others could not take it either: the request is at
        fault, not the providers.  `context_length_exceeded` or `content_filtered` when every refusal was
        that, else `bad_request`."""


# -- what a request produced -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttemptEvent:
    """A stream event: one attempt (or skip) has just ended."""

    attempt: Attempt


@dataclass(slots=True)
class Outcome:
    """How a request ended: the last event of a stream, or what awaiting `Relay.run` returns.

    `response` is what was served (the partial text when a stream broke after text went out);
    `error` is None exactly when the request was answered.  `cost_usd` is what every attempt
    cost together, priced once as the ledger recorded them; None when some part had no price
    (or there is no ledger to price it)."""

    attempts: list[Attempt]
    response: ChatResponse | None = None
    link: Link | None = None
    """The link that served (or was serving when a stream broke)."""
    fallback_used: bool = False
    error: LLMRelayError | None = None
    request_id: str = ""
    agent_id: str = ""
    cost_usd: Decimal | None = None
    generation_time_ms: int = 0
    turns: tuple[Message, ...] = ()
    """The conversation the request sent (the system prompt apart)."""
    budget_downgraded: bool = False
    """A budget kept some link of the chain from serving: the answer came from a cheaper (or free) one."""

    @property
    def history(self) -> list[Message]:
        """The conversation including this exchange, ready to send as the next request's turns."""
        resp = self.response
        if resp is None or not (resp.text or resp.tool_calls):
            return list(self.turns)
        return [*self.turns, resp.message]

    @property
    def text(self) -> str:
        return self.response.text if self.response is not None else ""

    @property
    def provider(self) -> str | None:
        """Who served (None when nothing did)."""
        return self.response.provider if self.response is not None else None

    @property
    def model(self) -> str | None:
        """The model that served, as the provider named it."""
        return self.response.model if self.response is not None else None

    @property
    def finish_reason(self) -> FinishReason | None:
        return self.response.finish_reason if self.response is not None else None

    @property
    def usage(self) -> Usage:
        """The serving attempt's usage (`tokens_spent` counts every attempt's)."""
        return self.response.usage if self.response is not None else Usage()

    @property
    def tokens_spent(self) -> int:
        return sum(a.usage.total_tokens for a in self.attempts if a.usage is not None)

    def to_dict(self) -> dict[str, Any]:
        """llmrelay's own JSON shape of an answer (the seed plan's, camelCase)."""
        u = self.usage
        d: dict[str, Any] = {
            "response": self.text, "model": self.model, "provider": self.provider, "usedProvider": self.provider,
            "fallbackUsed": self.fallback_used, "budgetDowngraded": self.budget_downgraded,
            "attemptedProviders": [a.to_dict() for a in self.attempts],
            "tokensUsed": {"prompt": u.input_tokens, "completion": u.output_tokens, "total": u.total_tokens},
            "costUsd": money(self.cost_usd), "finishReason": self.finish_reason,
            "generationTime": self.generation_time_ms, "requestId": self.request_id, "agentId": self.agent_id,
        }
        resp = self.response
        if resp is not None and (resp.tool_calls or resp.reasoning or resp.output_mode):
            d["toolCalls"] = [part_to_json(c) for c in resp.tool_calls]
            d["reasoning"] = [part_to_json(r) for r in resp.reasoning]
            d["structuredOutput"] = resp.output_mode
        if self.error is not None:
            d["error"] = str(self.error)
        return d


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    name: str
    enabled: bool
    disabled_reason: str | None
    base_url: str
    """Without any user:password it may hold."""
    circuits: dict[str, str]
    """Model -> `open` or `half_open`, for each circuit of the provider that is not closed."""


_ID_PREFIX = f"{int(time.time()):08x}{os.urandom(4).hex()}"
_ids = itertools.count(1)


def new_request_id() -> str:
    """Unique across processes and restarts (start time and 32 random bits, then a counter),
    increasing within a process (ledger index inserts stay local), and far cheaper than uuid4."""
    return f"{_ID_PREFIX}{next(_ids):012x}"


__all__ = [
    "NO_SAMPLING",
    "AllLinksFailed",
    "Attempt",
    "AttemptEvent",
    "AttemptStatus",
    "BudgetExceeded",
    "BudgetUnavailable",
    "ChainConfig",
    "ChatRequest",
    "ChatResponse",
    "ConfigError",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "ErrorKind",
    "FinishReason",
    "Finished",
    "Image",
    "InvalidRequest",
    "LLMRelayError",
    "Link",
    "Message",
    "Outcome",
    "OutputEvent",
    "OutputFormat",
    "Part",
    "Principal",
    "ProviderError",
    "ProviderStatus",
    "RateLimited",
    "Reasoning",
    "ReasoningDelta",
    "RequestContext",
    "RequestOptions",
    "Role",
    "Sampling",
    "StreamEvent",
    "Target",
    "Text",
    "TextDelta",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "ToolChoice",
    "ToolResult",
    "UnknownAgent",
    "UnknownModel",
    "Usage",
    "UsageReport",
    "decimal_or_none",
    "money",
    "needs_of",
    "new_request_id",
]
