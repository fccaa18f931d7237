"""`Relay`: the one service object the CLI, the HTTP API and the web UI use.

    async with Relay() as relay:                       # settings and agents from the environment
        result = await relay.chat("general-agent", "Hello")
        print(result.response, result.used_provider, result.fallback_used)

        async for event in relay.stream("general-agent", "Tell me more", history=result.history):
            ...                                         # AttemptEvent, TextDelta, then StreamDone/StreamFailed

It resolves the chain (request preference, else the user's saved config, else the agent's
chain), runs it through the fallback executor, and tells every registered observer about
every attempt (that is how the ledger hears of them).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from .agents import Agent, load_agents
from .config import Settings, load_settings
from .ledger import Ledger
from .ledger.pricing import money, request_cost
from .providers.base import Provider
from .providers.registry import build_providers, known_providers
from .routing.breaker import CircuitBreaker
from .routing.chain import ChainConfig, resolve_chain
from .routing.fallback import AttemptEvent, FallbackExecutor, Outcome
from .routing.policy import Policy
from .types import (
    AllLinksFailed,
    Attempt,
    ChatRequest,
    InvalidRequest,
    LLMRelayError,
    Message,
    ProviderError,
    RequestContext,
    TextDelta,
    UnknownAgent,
    Usage,
)

log = logging.getLogger("llmrelay")


AttemptObserver = Callable[[RequestContext, Attempt], None]
ConfigLookup = Callable[[str | None, str], Awaitable[ChainConfig | None]]


@dataclass(slots=True)
class ChatResult:
    """What one request produced: the answer and how it was obtained."""

    request_id: str
    agent_id: str
    response: str
    model: str | None
    used_provider: str | None
    fallback_used: bool
    attempts: list[Attempt]
    usage: Usage
    finish_reason: str | None
    generation_time_ms: int
    error: LLMRelayError | None = None
    cost_usd: Decimal | None = None
    """What every attempt of the request cost together; None when some part could not be priced."""
    history: list[Message] = field(default_factory=list)
    """The conversation including this exchange, ready to pass as the next request's history."""

    def to_dict(self) -> dict[str, Any]:
        """The seed plan's JSON shape (camelCase)."""
        u = self.usage
        d: dict[str, Any] = {
            "response": self.response,
            "model": self.model,
            "provider": self.used_provider,
            "usedProvider": self.used_provider,
            "fallbackUsed": self.fallback_used,
            "attemptedProviders": [a.to_dict() for a in self.attempts],
            "tokensUsed": {"prompt": u.input_tokens, "completion": u.output_tokens, "total": u.total_tokens},
            "costUsd": money(self.cost_usd),
            "finishReason": self.finish_reason,
            "generationTime": self.generation_time_ms,
            "requestId": self.request_id,
            "agentId": self.agent_id,
        }
        if self.error is not None:
            d["error"] = str(self.error)
        return d


@dataclass(frozen=True, slots=True)
class StreamDone:
    result: ChatResult


@dataclass(frozen=True, slots=True)
class StreamFailed:
    """The stream ended in an error.  `result` holds any text already sent and every attempt."""

    error: LLMRelayError
    result: ChatResult


RelayEvent = AttemptEvent | TextDelta | StreamDone | StreamFailed


class Relay:
    """`ledger="auto"` (the default) records every attempt in the database the settings name and
    uses users' saved configs; `ledger=None` runs without a database."""

    def __init__(self, settings: Settings | None = None, *, agents: dict[str, Agent] | None = None,
                 providers: dict[str, Provider] | None = None, breaker: CircuitBreaker | None = None,
                 policy: Policy | None = None, config_lookup: ConfigLookup | None = None,
                 observers: Iterable[AttemptObserver] = (), ledger: Ledger | Literal["auto"] | None = "auto") -> None:
        self.settings = settings if settings is not None else load_settings()
        s = self.settings
        self.agents = agents if agents is not None else load_agents(s.agents_file)
        self.providers = providers if providers is not None else build_providers(s)
        disabled = {p.name: p.disabled_reason or "disabled" for p in s.providers() if not p.enabled}
        self.breaker = breaker or CircuitBreaker(s.breaker_threshold, s.breaker_cooldown)
        self.policy = policy or Policy(max_retries=s.max_retries, retry_after_cap=s.retry_after_cap,
                                       first_token_timeout=s.first_token_timeout, deadline=s.request_deadline)
        self.executor = FallbackExecutor(self.providers, disabled=disabled, breaker=self.breaker,
                                         policy=self.policy)
        self.ledger: Ledger | None = Ledger(s) if ledger == "auto" else ledger
        self.observers: list[AttemptObserver] = list(observers)
        self.config_lookup = config_lookup
        if self.ledger is not None:
            self.observers.append(self.ledger.recorder.record)
            self.config_lookup = config_lookup or self.ledger.configs.get
        self._started = self.ledger is None

    async def __aenter__(self) -> Relay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Migrate the database if needed and start the ledger writer (also done on first use)."""
        if not self._started:
            await self.ledger.start()  # type: ignore[union-attr]
            self._started = True

    async def aclose(self) -> None:
        """Close provider connections and write out every queued ledger row."""
        await asyncio.gather(*(p.aclose() for p in self.providers.values()), return_exceptions=True)
        if self.ledger is not None:
            await self.ledger.aclose()
        self._started = self.ledger is None

    # -- requests ---------------------------------------------------------------------------------

    def agent(self, agent_id: str) -> Agent:
        try:
            return self.agents[agent_id]
        except KeyError:
            raise UnknownAgent(agent_id, list(self.agents)) from None

    async def prepare(self, agent_id: str, message: str, history: Sequence[Message | dict] = (), *,
                      preferred_provider: str | None = None, preferred_model: str | None = None,
                      user_id: str | None = None, max_tokens: int | None = None,
                      temperature: float | None = None) -> tuple[Agent, list[Any], ChatRequest]:
        """Validate a request and resolve its chain, without calling anything."""
        await self.start()
        agent = self.agent(agent_id)
        if not isinstance(message, str) or not message.strip():
            raise InvalidRequest("message must be a non-empty string", "message")
        if preferred_provider is not None and preferred_provider not in known_providers():
            raise InvalidRequest(f"unknown provider {preferred_provider!r} (known: "
                                 f"{', '.join(known_providers())})", "preferredProvider")
        config = await self.config_lookup(user_id, agent.id) if self.config_lookup else None
        links = resolve_chain(agent, preferred_provider=preferred_provider, preferred_model=preferred_model,
                              config=config)
        system, turns = _conversation(agent.system_prompt, history)
        turns.append(Message("user", message))
        request = ChatRequest(
            model=links[0].model, messages=tuple(turns), system=system or None,
            max_tokens=max_tokens or (config.max_tokens if config else None) or self.settings.default_max_tokens,
            temperature=temperature if temperature is not None else (config.temperature if config else None),
        )
        return agent, links, request

    async def chat(self, agent_id: str, message: str, history: Sequence[Message | dict] = (), *,
                   preferred_provider: str | None = None, preferred_model: str | None = None,
                   user_id: str | None = None, max_tokens: int | None = None, temperature: float | None = None,
                   request_id: str | None = None) -> ChatResult:
        """Ask `agent_id`.  Raises `AllLinksFailed` (with every attempt) when no link answered."""
        agent, links, request = await self.prepare(
            agent_id, message, history, preferred_provider=preferred_provider, preferred_model=preferred_model,
            user_id=user_id, max_tokens=max_tokens, temperature=temperature)
        ctx = RequestContext(request_id or new_request_id(), agent.id, user_id)
        t0 = time.monotonic()
        outcome = await self.executor.complete(links, request, self._observer(ctx))
        return self._result(ctx, outcome, request, t0)

    async def stream(self, agent_id: str, message: str, history: Sequence[Message | dict] = (), *,
                     preferred_provider: str | None = None, preferred_model: str | None = None,
                     user_id: str | None = None, max_tokens: int | None = None, temperature: float | None = None,
                     request_id: str | None = None) -> AsyncIterator[RelayEvent]:
        """Ask `agent_id`, streaming.  A validation error raises before the first event; after
        that the stream always ends with `StreamDone` or `StreamFailed`."""
        agent, links, request = await self.prepare(
            agent_id, message, history, preferred_provider=preferred_provider, preferred_model=preferred_model,
            user_id=user_id, max_tokens=max_tokens, temperature=temperature)
        ctx = RequestContext(request_id or new_request_id(), agent.id, user_id)
        t0 = time.monotonic()
        async with aclosing(self.executor.stream(links, request, self._observer(ctx))) as events:
            async for event in events:
                if isinstance(event, Outcome):
                    result = self._result(ctx, event, request, t0)
                    yield StreamDone(result) if event.error is None else StreamFailed(event.error, result)
                else:
                    yield event

    def _result(self, ctx: RequestContext, outcome: Outcome, request: ChatRequest, t0: float) -> ChatResult:
        result = _result(ctx, outcome, request, t0)
        if self.ledger is not None:
            result.cost_usd = request_cost(outcome.attempts, self.ledger.recorder.prices)
        return result

    def observer(self, ctx: RequestContext) -> Callable[[Attempt], None] | None:
        """Every registered observer (ledger, metrics) bound to one request, for a caller that runs
        `executor` itself (the OpenAI-compatible API resolves its own chains)."""
        return self._observer(ctx)

    def _observer(self, ctx: RequestContext) -> Callable[[Attempt], None] | None:
        if not self.observers:
            return None
        observers = tuple(self.observers)

        def notify(attempt: Attempt) -> None:
            for observer in observers:
                observer(ctx, attempt)

        return notify

    # -- operations --------------------------------------------------------------------------------

    def provider_status(self) -> list[dict[str, Any]]:
        """Each provider: enabled or why not, where it is, and any circuit that is not closed."""
        circuits = self.breaker.snapshot()
        return [{"name": p.name, "enabled": p.enabled, "reason": p.disabled_reason, "baseUrl": p.base_url,
                 "circuits": {model: state for (prov, model), state in circuits.items() if prov == p.name}}
                for p in self.settings.providers()]

    def probe_model(self, provider: str) -> str:
        """The model a provider check uses: the first one an agent's chain names, else its default."""
        for agent in self.agents.values():
            for link in agent.links:
                if link.provider == provider:
                    return link.model
        return type(self.providers[provider]).probe_model

    async def check_provider(self, provider: str, model: str | None = None) -> tuple[bool, int, str]:
        """Send a one-token request.  Returns (ok, latency ms, model or the error)."""
        model = model or self.probe_model(provider)
        request = ChatRequest(model=model, messages=(Message("user", "Reply with one word: ok"),), max_tokens=1)
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(self.policy.first_token_timeout):
                resp = await self.providers[provider].complete(request)
        except ProviderError as err:
            return False, round((time.monotonic() - t0) * 1000), f"{model}: {err.kind}: {err.message}"
        except TimeoutError:
            return False, round((time.monotonic() - t0) * 1000), f"{model}: no reply in time"
        return True, round((time.monotonic() - t0) * 1000), resp.model


_ID_PREFIX = f"{int(time.time()):08x}{os.urandom(4).hex()}"
_ids = itertools.count(1)


def new_request_id() -> str:
    """Unique across processes and restarts (start time and 32 random bits, then a counter),
    increasing within a process (ledger index inserts stay local), and far cheaper than uuid4."""
    return f"{_ID_PREFIX}{next(_ids):012x}"


def _conversation(system_prompt: str, history: Sequence[Message | dict]) -> tuple[str, list[Message]]:
    """Validate history; `system` turns in it join the agent's system prompt."""
    system = [system_prompt] if system_prompt else []
    turns: list[Message] = []
    for i, item in enumerate(history):
        if isinstance(item, Message):
            role, content = item.role, item.content
        elif isinstance(item, dict):
            role, content = item.get("role"), item.get("content")
        else:
            raise InvalidRequest(f"history[{i}] must be an object with role and content", "conversationHistory")
        if role not in ("user", "assistant", "system"):
            raise InvalidRequest(f"history[{i}].role must be user, assistant or system, not {role!r}",
                                 "conversationHistory")
        if not isinstance(content, str):
            raise InvalidRequest(f"history[{i}].content must be a string", "conversationHistory")
        if role == "system":
            system.append(content)
        else:
            turns.append(Message(role, content))
    return "\n\n".join(system), turns


def _result(ctx: RequestContext, outcome: Outcome, request: ChatRequest, t0: float) -> ChatResult:
    resp = outcome.response
    history = list(request.messages)
    if resp is not None and resp.text:
        history.append(Message("assistant", resp.text))
    usage = resp.usage if resp is not None else Usage()
    return ChatResult(
        request_id=ctx.request_id, agent_id=ctx.agent_id, response=resp.text if resp else "",
        model=resp.model if resp else None, used_provider=resp.provider if resp else None,
        fallback_used=outcome.fallback_used, attempts=outcome.attempts, usage=usage,
        finish_reason=resp.finish_reason if resp else None,
        generation_time_ms=round((time.monotonic() - t0) * 1000), error=outcome.error, history=history)


__all__ = ["AllLinksFailed", "ChatResult", "Relay", "RelayEvent", "RequestContext", "StreamDone",
           "StreamFailed"]
