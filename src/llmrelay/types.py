"""The unified vocabulary every layer speaks: messages, requests, replies, stream events, errors.

Adapters translate these to and from one provider's wire format; nothing above the adapters
ever sees a provider's field names.

Errors::

    LLMRelayError
    ├── ConfigError            a setting or an agents file is wrong; reported once, at start-up
    ├── InvalidRequest         the caller asked for something impossible (`field` says what)
    │   └── UnknownAgent
    ├── ProviderError          one call to one provider/model failed; carries a `kind`
    └── AllLinksFailed         every link of a fallback chain failed or was skipped

A `ProviderError.kind` decides what the fallback executor does next (see `ErrorKind`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Literal

Role = Literal["user", "assistant"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


@dataclass(frozen=True, slots=True)
class Message:
    """One conversation turn.  The system prompt is not a message: see `ChatRequest.system`."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call.

    `input_tokens` counts every prompt token, cached ones included; `cached_input_tokens` is the
    part of it read from a prompt cache.  `output_tokens` counts every generated token,
    reasoning included; `reasoning_tokens` is the part spent thinking.  `cache_write_tokens` is
    the part of the input written to a cache (Anthropic bills it at its own price).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class ChatResponse:
    text: str
    model: str
    provider: str
    usage: Usage
    finish_reason: FinishReason
    raw_id: str | None = None
    provider_cost_usd: str | None = None
    """The call's cost as the provider itself reported it (OpenRouter), as a decimal string."""


@dataclass(frozen=True, slots=True)
class Link:
    """One provider/model pair of a fallback chain."""

    provider: str
    model: str
    max_retries: int | None = None
    """Retries after the first attempt; None: the policy's default."""

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


# -- stream events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class UsageReport:
    """The usage so far.  Providers report cumulative figures: the last report wins."""

    usage: Usage
    model: str | None = None
    raw_id: str | None = None
    provider_cost_usd: str | None = None


@dataclass(frozen=True, slots=True)
class Finished:
    finish_reason: FinishReason


StreamEvent = TextDelta | UsageReport | Finished


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


# -- errors --------------------------------------------------------------------------------


class ErrorKind(StrEnum):
    """What went wrong, independent of the provider.  Each kind carries a policy:

    ========================  ================  ==============  ===================
    kind                      retry same link   next link       counts for breaker
    ========================  ================  ==============  ===================
    rate_limited              yes               yes             yes
    overloaded                yes               yes             yes
    timeout                   yes               yes             yes
    connection                yes               yes             yes
    server_error              yes               yes             yes
    auth                      no                yes             yes
    not_found                 no                yes             yes
    context_length_exceeded   no                yes             no (the request's fault)
    content_filtered          no                yes             no (the request's fault)
    bad_request               no                no: fatal       no (the request's fault)
    ========================  ================  ==============  ===================

    A single error may override the first two columns (e.g. an OpenAI 429 "insufficient
    quota" is `rate_limited` in spirit but never worth retrying).
    """

    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    SERVER_ERROR = "server_error"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
    CONTENT_FILTERED = "content_filtered"
    NOT_FOUND = "not_found"

    @property
    def retryable(self) -> bool:
        return self in _RETRYABLE

    @property
    def falls_through(self) -> bool:
        return self is not ErrorKind.BAD_REQUEST

    @property
    def provider_fault(self) -> bool:
        return self not in _REQUEST_FAULTS


_RETRYABLE = frozenset(
    {ErrorKind.RATE_LIMITED, ErrorKind.OVERLOADED, ErrorKind.TIMEOUT, ErrorKind.CONNECTION,
     ErrorKind.SERVER_ERROR}
)
_REQUEST_FAULTS = frozenset(
    {ErrorKind.BAD_REQUEST, ErrorKind.CONTEXT_LENGTH_EXCEEDED, ErrorKind.CONTENT_FILTERED}
)


class LLMRelayError(Exception):
    """Base of every error llmrelay raises on purpose."""


class ConfigError(LLMRelayError):
    """A setting, an agents file or a command-line value is wrong.  The message is one line."""


class InvalidRequest(LLMRelayError):
    """The caller asked for something impossible.  `field` names the offending input."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownAgent(InvalidRequest):
    def __init__(self, agent_id: str, known: list[str] | None = None) -> None:
        hint = f" (known: {', '.join(sorted(known))})" if known else ""
        super().__init__(f"unknown agent {agent_id!r}{hint}", "agentId")
        self.agent_id = agent_id


class ProviderError(LLMRelayError):
    """One call to one provider/model failed.

    `message` has already been stripped of secrets.  `retry_after` is the provider's own hint
    in seconds (from `retry-after-ms`, `retry-after` or Gemini's `RetryInfo`), if any.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status: int | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
        falls_through: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = ErrorKind(kind)
        self.message = message
        self.provider = provider
        self.model = model
        self.status = status
        self.retry_after = retry_after
        self._retryable = retryable
        self._falls_through = falls_through

    @property
    def retryable(self) -> bool:
        """Worth trying again on the same provider/model after a pause."""
        return self.kind.retryable if self._retryable is None else self._retryable

    @property
    def falls_through(self) -> bool:
        """Worth trying the next link of the chain."""
        return self.kind.falls_through if self._falls_through is None else self._falls_through

    def __str__(self) -> str:
        where = "/".join(p for p in (self.provider, self.model) if p)
        status = f" (HTTP {self.status})" if self.status else ""
        return f"{where}: {self.kind.value}{status}: {self.message}" if where else self.message

    def __repr__(self) -> str:
        return (f"ProviderError(kind={self.kind.value!r}, provider={self.provider!r}, "
                f"model={self.model!r}, status={self.status!r}, message={self.message!r})")


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


class AllLinksFailed(LLMRelayError):
    """No link of the chain answered.  `attempts` says why, link by link.  `fatal` is set when
    the walk stopped early because a provider rejected the request itself (`bad_request`):
    the same request would fail identically everywhere."""

    def __init__(self, message: str, attempts: list[Attempt], fatal: ProviderError | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.fatal = fatal
