"""The errors llmrelay raises on purpose, and what each kind of provider failure means.

    LLMRelayError
    ├── ConfigError            a setting or an agents file is wrong; reported once, at start-up
    ├── InvalidRequest         the caller asked for something impossible (`field` says what)
    │   ├── UnknownAgent
    │   └── UnknownModel       a model name nobody serves
    ├── RateLimited            the caller is over a rate limit (`retry_after` seconds)
    ├── BudgetExceeded         a USD budget leaves no link of the chain able to serve
    ├── BudgetUnavailable      a budget cannot be checked (its database does not answer)
    ├── ProviderError          one call to one provider/model failed; carries a `kind`
    └── AllLinksFailed         every link of a fallback chain failed or was skipped (in `types`,
                               beside the attempts it carries)

A `ProviderError.kind` decides what the fallback executor does next (see `ErrorKind`).  Every
name here is also importable from `llmrelay.types`.
"""

from __future__ import annotations

from enum import StrEnum


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
    def __init__(self, agent_id: str, known: list[str] | None = None, field: str = "agentId") -> None:
        hint = f" (known: {', '.join(sorted(known))})" if known else ""
        super().__init__(f"unknown agent {agent_id!r}{hint}", field)
        self.agent_id = agent_id


class UnknownModel(InvalidRequest):
    def __init__(self, model: str, why: str, field: str = "model") -> None:
        super().__init__(f"the model {model!r} does not exist: {why}", field)
        self.model = model


class RateLimited(LLMRelayError):
    """The caller is over one of their rate limits; `retry_after` is in whole seconds."""

    def __init__(self, limit: str, retry_after: int) -> None:
        super().__init__(f"rate limit reached ({limit}); retry in {retry_after} s")
        self.limit = limit
        self.retry_after = retry_after


class BudgetExceeded(LLMRelayError):
    """A budget's hard limit leaves no link of the chain able to serve (no free link, and every priced one
    would cross it).  `budget` names it (`user:alice`, `agent:coder`, `user:alice/agent:coder`); `spent_usd`
    is what its period has used and reserved, `limit_usd` its hard limit, `resets_at` when the period ends
    (an aware UTC datetime)."""

    def __init__(self, budget: str, spent_usd, limit_usd, resets_at, why: str = "") -> None:  # type: ignore[no-untyped-def]
        spent, limit = (format(v.normalize(), "f") for v in (spent_usd, limit_usd))
        super().__init__(f"budget {budget} leaves no link of the chain to serve"
                         f"{': ' + why if why else ''} ({spent} of {limit} USD spent or reserved this "
                         f"period; it resets at {resets_at.isoformat()})")
        self.why = why
        self.budget = budget
        self.spent_usd = spent_usd
        self.limit_usd = limit_usd
        self.resets_at = resets_at


class BudgetUnavailable(LLMRelayError):
    """A budget applies to the request but cannot be checked: the database that holds its spend does not
    answer and this process holds no lease that covers the request.  Served unchecked it could overspend."""

    def __init__(self, budget: str, why: str) -> None:
        super().__init__(f"budget {budget} cannot be checked now (its database does not answer: {why}); "
                         f"retry shortly")
        self.budget = budget


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
