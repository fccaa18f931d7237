"""Embeddings through the one pipeline (`Relay.embed`): the same road as a chat's `Relay.run`.

    outcome = await relay.embed(alice, "openai/text-embedding-3-small", ["a text", "another"])
    outcome.vectors, outcome.usage.input_tokens, outcome.cost_usd, outcome.link, outcome.fallback_used

The target resolves as a chat's does (`<provider>/<model>`, a bare model name the catalog knows,
`agent:<id>` of an agent of kind `embedding`, with the caller's saved config for it); the request is
admitted by the same rate limits, walks the chain on the same executor (`FallbackExecutor.walk`: skips
with reasons, retries and backoff, the breaker, the deadline), between links of one vector dimension
(`routing.embeddings`); every attempt is one ledger row (kind `embedding`, its input tokens, no output
tokens, priced from the price table), the caller is charged the input tokens once however the request
ends, and it ends in one `EmbeddingOutcome`, whose `error` is set when no link answered.  A request that
cannot be served as asked raises before any provider is called (`UnknownAgent`, `UnknownModel`,
`InvalidRequest`, `RateLimited`).

Conversely a chat may not name an embedding agent or model (`refuse_embedding_target`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from ..catalog import embedding_facts
from ..ledger.charges import Charge, known_cost, total_cost
from ..ledger.rows import LOCAL_USER
from ..routing.embeddings import EmbeddingCall, EmbeddingFit, chain_dimension
from ..routing.targets import AGENT_PREFIX
from ..types import (
    Attempt,
    EmbeddingRequest,
    EmbeddingResponse,
    InvalidRequest,
    Link,
    LLMRelayError,
    Principal,
    RequestContext,
    Target,
    Usage,
    money,
    new_request_id,
)

if TYPE_CHECKING:
    from .pipeline import Pipeline

MAX_INPUTS = 2048
"""The most inputs one request may carry (OpenAI's limit; Gemini's batches of 100 are the adapter's
business)."""
MAX_INPUT_CHARS = 1_000_000


@dataclass(slots=True)
class EmbeddingOutcome:
    """How an embedding request ended, as `Outcome` says it for a chat: the vectors (one per input, in
    order) and who made them, or `error` when no link answered; every attempt; the exact cost of them all
    (None when some had no price, or without a ledger)."""

    attempts: list[Attempt]
    response: EmbeddingResponse | None = None
    link: Link | None = None
    fallback_used: bool = False
    error: LLMRelayError | None = None
    request_id: str = ""
    agent_id: str = ""
    cost_usd: Decimal | None = None
    generation_time_ms: int = 0
    inputs: tuple[str, ...] = field(default=())
    budget_downgraded: bool = False
    """A budget kept some link of the chain from serving."""

    @property
    def vectors(self) -> list[list[float]]:
        return self.response.vectors if self.response is not None else []

    @property
    def provider(self) -> str | None:
        return self.response.provider if self.response is not None else None

    @property
    def model(self) -> str | None:
        """The model that served, as the provider named it."""
        return self.response.model if self.response is not None else None

    @property
    def usage(self) -> Usage:
        """The serving attempt's usage (`tokens_spent` counts every attempt's)."""
        return self.response.usage if self.response is not None else Usage()

    @property
    def tokens_spent(self) -> int:
        return sum(a.usage.total_tokens for a in self.attempts if a.usage is not None)

    def to_dict(self) -> dict:
        """llmrelay's own JSON shape (as `Outcome.to_dict`), vectors included."""
        d = {"embeddings": self.vectors, "model": self.model, "provider": self.provider,
             "fallbackUsed": self.fallback_used, "budgetDowngraded": self.budget_downgraded,
             "attemptedProviders": [a.to_dict() for a in self.attempts],
             "tokensUsed": {"prompt": self.usage.input_tokens, "completion": 0, "total": self.usage.input_tokens},
             "costUsd": money(self.cost_usd), "generationTime": self.generation_time_ms,
             "requestId": self.request_id, "agentId": self.agent_id}
        if self.error is not None:
            d["error"] = str(self.error)
        return d


def checked_inputs(inputs: str | Sequence[str], field: str = "input") -> tuple[str, ...]:
    """The texts to embed: one string or a list of them, none empty; `InvalidRequest` naming `field`."""
    texts = (inputs,) if isinstance(inputs, str) else tuple(inputs)
    if not texts:
        raise InvalidRequest(f"{field} must hold at least one text", field)
    if len(texts) > MAX_INPUTS:
        raise InvalidRequest(f"{field} holds {len(texts)} texts; at most {MAX_INPUTS} go in one request", field)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidRequest(f"{field}[{i}] must be a string, not {type(text).__name__}", field)
        if not text:
            raise InvalidRequest(f"{field}[{i}] is empty: every input needs some text", field)
        if len(text) > MAX_INPUT_CHARS:
            raise InvalidRequest(f"{field}[{i}] is over {MAX_INPUT_CHARS} characters", field)
    return texts


async def embed(relay: Pipeline, principal: Principal | None, target: str, inputs: str | Sequence[str], *,
                dimensions: int | None = None, end_user: str | None = None, request_id: str | None = None,
                field: str = "model") -> EmbeddingOutcome:
    """`Relay.embed`: see the module docstring."""
    texts = checked_inputs(inputs)
    if dimensions is not None and (type(dimensions) is not int or dimensions < 1):
        raise InvalidRequest(f"dimensions must be a positive integer, not {dimensions!r}", "dimensions")
    if not relay.started:
        await relay.start()
    user_id = principal.user_id if principal is not None else None
    resolved = await relay.targets.resolve(target, user_id, field=field)
    if target.startswith(AGENT_PREFIX):
        agent = relay.agent(resolved.agent_id)
        if agent.kind != "embedding":
            raise InvalidRequest(f"agent {agent.id!r} is a {agent.kind} agent: it answers, it makes no embeddings "
                                 f"(an agent of kind = \"embedding\" does)", field)
        dimensions = dimensions if dimensions is not None else agent.dimensions
    if principal is not None:
        await relay.guard.admit(principal)
    request = EmbeddingRequest(resolved.links[0].model, texts, dimensions, end_user)
    dimension = chain_dimension(resolved.links, dimensions)
    ticket = None
    if relay.budgets is not None:  # an embedding's worst case: its input, nothing out
        ticket = await relay.budgets.admit(user_id if user_id is not None else LOCAL_USER, resolved.agent_id,
                                           resolved.links, input_chars=sum(map(len, texts)))
    ctx = RequestContext(request_id or new_request_id(), resolved.agent_id, user_id, kind="embedding",
                         budget_downgraded=ticket is not None and ticket.downgraded,
                         leases=ticket.leases if ticket is not None else ())
    attempts: list[Attempt] = []
    charges: list[Charge] = []
    t0 = time.monotonic()
    try:
        walked = await relay.executor.walk(resolved.links, request, EmbeddingCall(dimension),
                                           fit=EmbeddingFit(relay.providers, dimension),
                                           observer=relay.observer(ctx, attempts, charges),
                                           skip=ticket.skip if ticket is not None else None)
    except BaseException:  # cancelled: what the attempts used is still charged
        if ticket is not None:
            relay.budgets.settle(ticket, known_cost(charges))  # type: ignore[union-attr]
        await relay.spend_shielded(principal, attempts)
        raise
    if ticket is not None:
        relay.budgets.settle(ticket, known_cost(charges))  # type: ignore[union-attr]
    await relay.spend(principal, attempts)
    ledger = relay.ledger
    if ledger is not None and ledger.recorder.durable and attempts:  # the answer waits for its rows
        await ledger.recorder.settled()
    return EmbeddingOutcome(walked.attempts, walked.result, walked.link, walked.fallback_used, walked.error,
                            ctx.request_id, ctx.agent_id,
                            total_cost(charges) if relay.ledger is not None else None,
                            round((time.monotonic() - t0) * 1000), texts, ctx.budget_downgraded)


def refuse_embedding_target(relay: Pipeline, target: Target, field: str) -> None:
    """A chat may not name an embedding agent, nor have an embedding model in its chain (named directly, or
    put there by a preferred model or a saved config): `InvalidRequest` naming it."""
    agent = relay.agents.get(target.agent_id)
    if agent is not None and agent.kind == "embedding":
        raise InvalidRequest(f"agent {agent.id!r} makes embeddings (POST /v1/embeddings), not answers", field)
    for link in target.links:
        if embedding_facts(link.provider, link.model) is not None:
            raise InvalidRequest(f"{link} is an embedding model: it makes vectors (POST /v1/embeddings), not "
                                 "answers", field)
