"""How many input tokens a request would send (`POST /v1/messages/count_tokens`).

The request is resolved and assembled exactly as `Relay.run` would send it (the agent's system prompt
and tools included), and the link that would serve it is found: the first of its chain whose provider is
enabled, whose circuit is not open and which can take the request (`routing.fit`).  That link's provider
counts, where it can (`Provider.count_tokens`: Anthropic's and Gemini's own count endpoints); the count
is then `provider`.  Otherwise (no such link, a provider without a count endpoint, a count that failed or took
longer than LLMRELAY_FIRST_TOKEN_TIMEOUT) it is an `estimate`:

    3 per request + 4 per message + 10 per tool + 1,600 per image + ceil(characters / 4)

where the characters are those of the system prompt, every text, tool call (name and arguments), tool
result and reasoning part, every tool's name, description and JSON Schema, and the output format's schema.
Four characters a token is the usual figure for English text; 1,600 tokens is what Claude charges for
an image of about 1.15 megapixels, the largest it takes before resizing.

Counting asks the provider with llmrelay's key, so it is admitted like any request (the caller's rate
limits); an estimate calls nobody and is not.  No ledger row is written: counting generates nothing and
costs nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..providers.base import Provider
from ..types import (
    ChatRequest,
    Image,
    Link,
    Message,
    Principal,
    ProviderError,
    Reasoning,
    RequestOptions,
    Text,
    ToolCall,
    ToolResult,
)

if TYPE_CHECKING:
    from ..relay import Relay

log = logging.getLogger("llmrelay.api")
CHARS_PER_TOKEN = 4
PER_REQUEST, PER_MESSAGE, PER_TOOL, PER_IMAGE = 3, 4, 10, 1600


@dataclass(frozen=True, slots=True)
class Count:
    input_tokens: int
    source: Literal["provider", "estimate"]
    link: Link | None
    """The link that would serve the request (None: no link of the chain could)."""


async def count_input_tokens(relay: Relay, principal: Principal | None, target: str, turns: list[Message],
                             options: RequestOptions) -> Count:
    """The request's input tokens (see the module docstring).  Raises what `Relay.run` raises before any
    provider is called (`UnknownModel`, `UnknownAgent`, `InvalidRequest`, `RateLimited`)."""
    await relay.start()  # (once: it returns at once when started)
    resolved = await relay.targets.resolve(target, principal.user_id if principal else None, field="model")
    request = relay.request(resolved, turns, options)
    link = serving_link(relay, resolved.links, request)
    if link is not None:
        counted = await _provider_count(relay, principal, link, request)
        if counted is not None:
            return Count(counted, "provider", link)
    return Count(estimate(request), "estimate", link)


def serving_link(relay: Relay, links: tuple[Link, ...], request: ChatRequest) -> Link | None:
    """The first link the fallback executor would call (without touching any circuit)."""
    executor = relay.executor
    circuits = relay.breaker.snapshot()
    for link in links:
        if link.provider in executor.disabled or link.provider not in relay.providers:
            continue
        if circuits.get((link.provider, link.model)) == "open":
            continue
        if executor.fit is not None and executor.fit(link, request) is not None:
            continue
        return link
    return None


async def _provider_count(relay: Relay, principal: Principal | None, link: Link, request: ChatRequest) -> int | None:
    provider = relay.providers[link.provider]
    if type(provider).count_tokens is Provider.count_tokens:  # no count endpoint: nobody to ask
        return None
    if principal is not None:
        await relay.guard.admit(principal)
    try:
        async with asyncio.timeout(relay.policy.first_token_timeout):
            return await provider.count_tokens(dataclasses.replace(request, model=link.model))
    except ProviderError as err:
        log.info("%s could not count tokens (%s: %s): estimating", link, err.kind, err.message)
    except TimeoutError:
        log.info("%s did not count tokens in time: estimating", link)
    return None


def estimate(request: ChatRequest) -> int:
    """An estimate of the request's input tokens (the formula is the module docstring's)."""
    tokens = PER_REQUEST
    chars = len(request.system or "")
    for m in request.messages:
        tokens += PER_MESSAGE
        for p in m.parts:
            kind = type(p)
            if kind is Text:
                chars += len(p.text)
            elif kind is Image:
                tokens += PER_IMAGE
            elif kind is ToolCall:
                chars += len(p.name) + len(p.arguments)
            elif kind is ToolResult:
                chars += len(p.content)
            elif kind is Reasoning:
                chars += len(p.text)
    for t in request.tools:
        tokens += PER_TOOL
        chars += len(t.name) + len(t.description) + len(json.dumps(t.parameters, separators=(",", ":")))
    if request.output is not None and request.output.schema is not None:
        chars += len(json.dumps(request.output.schema, separators=(",", ":")))
    return tokens + math.ceil(chars / CHARS_PER_TOKEN)
