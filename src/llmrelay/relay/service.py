"""`Relay`, the one service object, and `Relay.run`, the one pipeline every request goes through.

    async with Relay() as relay:                     # settings and agents from the environment
        outcome = await relay.run(None, "agent:general-agent", [Message("user", "Hello")])
        print(outcome.text, outcome.link, outcome.fallback_used, outcome.cost_usd)

        async for event in relay.run(alice, "openai/gpt-4o", turns, RequestOptions(max_tokens=200)):
            ...                                       # AttemptEvent, TextDelta, ..., then one Outcome

        outcome = await relay.chat("general-agent", "Hello", user="alice")   # one message, the same road

        vectors = (await relay.embed(alice, "openai/text-embedding-3-small", ["a text"])).vectors  # embeddings

`run(principal, target, turns, options)` resolves the target (`routing.targets`: an agent's chain
with the caller's saved config, a provider/model, a bare model name, extra fallbacks), assembles the
request (the agent's system prompt before the caller's, max tokens and temperature from the request,
else the saved config, else the defaults), admits it (`routing.guards`: rate limits; `routing.budgets`:
USD budgets, which may keep links that would cross one from serving), walks the chain (`routing.fallback`),
has the ledger record and price every attempt the moment it ends, spends the caller's tokens exactly once
however the request ends (answered, failed, cancelled, abandoned mid-stream), settles its budget
reservation, and adds the cost up once.  Every ingress is a codec around it: the agents API, /v1,
`llmrelay chat` and this Python API parse their input, run, and render the `Outcome`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from typing import Any, Literal

from ..agents import Agent, load_agents
from ..config import Settings, load_settings
from ..db.budgets import BudgetStore
from ..db.changes import ChangeFeed
from ..ledger import Ledger
from ..ledger.charges import Charge
from ..providers.base import Provider, Timeouts
from ..providers.registry import build_providers, known_providers
from ..redaction import without_credentials
from ..routing.alerts import webhook_alert
from ..routing.breaker import CircuitBreaker
from ..routing.budgets import Budgets
from ..routing.fallback import FallbackExecutor
from ..routing.fit import Fit
from ..routing.guards import Guard, OpenStreams, RateLimits
from ..routing.policy import Policy
from ..routing.shared_breaker import SharedBreaker
from ..routing.targets import AGENT_PREFIX, Targets
from ..types import (
    NO_SAMPLING,
    Attempt,
    ChatRequest,
    InvalidRequest,
    Message,
    Outcome,
    OutputEvent,
    OutputFormat,
    Part,
    Principal,
    ProviderError,
    ProviderStatus,
    RequestContext,
    RequestOptions,
    Sampling,
    Target,
    Tool,
    ToolChoice,
    UnknownAgent,
    needs_of,
)
from .ask import ask, tool_choice_of
from .embed import EmbeddingOutcome, embed, refuse_embedding_target
from .pipeline import RelayEvent
from .run import Run

log = logging.getLogger("llmrelay")

AttemptObserver = Callable[[RequestContext, Attempt], None]
_PRINCIPAL_TTL = 5.0
_background: set[asyncio.Task] = set()


class Relay:
    """`ledger="auto"` (the default) records and prices every attempt in the database the settings
    name and applies users' saved configs; `ledger=None` runs without a database (nothing is priced).
    `guard` admits requests and spends their tokens (default: the settings' rate limits)."""

    def __init__(self, settings: Settings | None = None, *, agents: dict[str, Agent] | None = None,
                 providers: dict[str, Provider] | None = None, breaker: CircuitBreaker | None = None,
                 policy: Policy | None = None, observers: Iterable[AttemptObserver] = (),
                 ledger: Ledger | Literal["auto"] | None = "auto", guard: Guard | None = None) -> None:
        self.settings = settings if settings is not None else load_settings()
        s = self.settings
        self.agents = agents if agents is not None else load_agents(s.agents_file)
        self.providers = providers if providers is not None else build_providers(
            s.providers(), Timeouts(s.connect_timeout, s.idle_timeout), s.provider_connections)
        disabled = {p.name: p.disabled_reason or "disabled" for p in s.providers() if not p.enabled}
        self.breaker = breaker or CircuitBreaker(s.breaker_threshold, s.breaker_cooldown)
        self.shared_breaker = SharedBreaker(self.breaker, s.redis_url) if s.redis_url and breaker is None else None
        """The breaker's news shared with every other process through Redis (`LLMRELAY_REDIS_URL`)."""
        self.policy = policy or Policy(max_retries=s.max_retries, retry_after_cap=s.retry_after_cap,
                                       first_token_timeout=s.first_token_timeout, deadline=s.request_deadline)
        self.executor = FallbackExecutor(self.providers, disabled=disabled, breaker=self.breaker,
                                         policy=self.policy, fit=Fit(self.providers))
        self.ledger: Ledger | None = Ledger(s) if ledger == "auto" else ledger
        self.guard: Guard = guard or RateLimits(s.rate_rpm, s.rate_tpm, s.redis_url)
        self.streams = OpenStreams(s.max_streams)
        """Each user's open streams in this process, capped (`LLMRELAY_MAX_STREAMS`)."""
        self.budgets: Budgets | None = None if self.ledger is None else Budgets(
            BudgetStore(self.ledger.engine), lambda: self.ledger.recorder.prices,  # type: ignore[union-attr]
            hold_seconds=s.request_deadline + 60, alert=webhook_alert(self.ledger.engine))
        """USD budgets (`routing.budgets`): which links a request may use, what it reserves; with the ledger."""
        self.observers: list[AttemptObserver] = list(observers)
        """Told of every attempt as it ends (after the ledger has recorded it): metrics, tests."""
        self.targets = Targets(
            self.agents, known_providers, default_provider=s.default_provider,
            config_lookup=self.ledger.configs.get if self.ledger is not None else None,
            prices=(lambda: self.ledger.recorder.prices) if self.ledger is not None else (lambda: None))
        self.changes = ChangeFeed.for_engine(self.ledger.engine) if self.ledger is not None else None
        """PostgreSQL's change notifications: what another process wrote is reloaded here at once."""
        if self.changes is not None:
            self._watch(self.changes)
        self._principals: dict[str, tuple[Principal, float]] = {}
        self._started = self.ledger is None

    async def __aenter__(self) -> Relay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def started(self) -> bool:
        """Migrated and recording (a Relay without a ledger has nothing to start)."""
        return self._started

    def _watch(self, changes: ChangeFeed) -> None:
        ledger = self.ledger
        assert ledger is not None
        changes.watch("ai_model_config", ledger.configs.reload)
        changes.watch("ai_provider_costs", ledger.recorder.reload_prices)
        if self.budgets is not None:
            changes.watch("budgets", self.budgets.load)
        changes.watch("users", self._forget_principals)
        changes.watch("api_keys", self._forget_principals)

    async def _forget_principals(self) -> None:
        self._principals.clear()

    async def start(self) -> None:
        """Migrate the database if needed and start the ledger writer (also done on first use), and what
        shares state with other processes (the breaker over Redis, PostgreSQL's change notifications)."""
        if not self._started:
            await self.ledger.start()  # type: ignore[union-attr]
            self._started = True
            if self.changes is not None:
                await self.changes.start()
        if self.shared_breaker is not None:
            await self.shared_breaker.start()

    async def aclose(self) -> None:
        """Close provider connections and write out every queued ledger row."""
        await asyncio.gather(*(p.aclose() for p in self.providers.values()), return_exceptions=True)
        if self.shared_breaker is not None:
            await self.shared_breaker.aclose()
        if self.changes is not None:
            await self.changes.aclose()
        if self.budgets is not None and self._started:
            await self.budgets.aclose()
        if self.ledger is not None:
            await self.ledger.aclose()
        self._started = self.ledger is None

    def agent(self, agent_id: str) -> Agent:
        try:
            return self.agents[agent_id]
        except KeyError:
            raise UnknownAgent(agent_id, list(self.agents)) from None

    # -- the pipeline --------------------------------------------------------------------------------

    def run(self, principal: Principal | None, target: str, turns: Sequence[Message],
            options: RequestOptions | None = None) -> Run:
        """One request: await the returned `Run` for its `Outcome`, or iterate it for stream events
        ending in one.  `principal` None is the local caller: no rate limits, ledger user `local`."""
        return Run(self, principal, target, turns, options or _NO_OPTIONS)

    def request(self, target: Target, turns: Sequence[Message], options: RequestOptions) -> ChatRequest:
        """The provider request a resolved target and the caller's turns make: the agent's system prompt
        before the caller's, the agent's tools with the caller's (a caller's tool replaces the agent's of
        the same name), the caller's output format else the agent's.  A breakpoint the caller set on
        their system prompt marks the end of the whole system prompt (theirs comes last)."""
        if not turns:
            raise InvalidRequest("a request needs at least one user or assistant turn", "messages")
        refuse_embedding_target(self, target, options.target_field)
        system = "\n\n".join(s for s in (target.system_prompt, options.system) if s)
        config = target.config
        saved_max = config.max_tokens if config else None
        tools = options.tools
        if target.tools:
            mine = {t.name for t in tools}
            tools = (*(t for t in target.tools if t.name not in mine), *tools)
        choice = options.tool_choice
        if choice is not None and choice.mode == "tool" and choice.name not in {t.name for t in tools}:
            raise InvalidRequest(f"tool_choice names {choice.name!r}, which is not among the tools", "tool_choice")
        output = options.output if options.output is not None else target.output
        needs, images, chars = needs_of(turns, tools, choice, options.parallel_tool_calls, output, options.sampling)
        return ChatRequest(
            model=target.links[0].model, messages=tuple(turns), system=system or None,
            system_cache=options.system_cache if system else None,
            max_tokens=options.max_tokens or saved_max or self.settings.default_max_tokens,
            temperature=options.temperature if options.temperature is not None else (
                config.temperature if config else None),
            stop=options.stop, tools=tools, tool_choice=choice, parallel_tool_calls=options.parallel_tool_calls,
            output=output, sampling=options.sampling, end_user=options.end_user, needs=needs, images=images,
            input_chars=chars + len(system))

    async def embed(self, principal: Principal | str | None, target: str, inputs: str | Sequence[str], *,
                    dimensions: int | None = None, end_user: str | None = None,
                    request_id: str | None = None) -> EmbeddingOutcome:
        """Vectors for `inputs` (a text or a list of them) from `target` (`<provider>/<model>`, a bare
        embedding model name, or `agent:<id>` of an embedding agent), on the same road as `run` (limits,
        fallback between models of one dimension, ledger rows of kind `embedding`); `dimensions` asks
        for shorter vectors.  `principal` as for `chat`'s `user`.  The `EmbeddingOutcome`'s `error` is set
        when no link answered."""
        who = await self.principal(principal)
        return await embed(self, who, target, inputs, dimensions=dimensions, end_user=end_user,
                           request_id=request_id)

    def observer(self, ctx: RequestContext, attempts: list[Attempt],
                 charges: list[Charge]) -> Callable[[Attempt], None]:
        """Binds one request: each attempt is collected, recorded (and priced) by the ledger, then
        handed to every other observer."""
        recorder = self.ledger.recorder if self.ledger is not None else None
        observers = tuple(self.observers)

        def notify(attempt: Attempt) -> None:
            attempts.append(attempt)
            if recorder is not None:
                charges.append(recorder.record(ctx, attempt))
            for observe in observers:
                observe(ctx, attempt)

        return notify

    async def spend(self, who: Principal | None, attempts: list[Attempt]) -> None:
        """Charge the caller the tokens every attempt used."""
        if who is not None:
            await self.guard.spend(who, sum(a.usage.total_tokens for a in attempts if a.usage is not None))

    async def spend_shielded(self, who: Principal | None, attempts: list[Attempt]) -> None:
        """`spend`, for a request that is being cancelled or abandoned: the charge finishes in the
        background if this task is cancelled meanwhile (and the cancellation goes on)."""
        if who is None:
            return
        task = asyncio.ensure_future(self.spend(who, attempts))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            _background.add(task)
            task.add_done_callback(_background.discard)
            raise

    # -- the Python API ---------------------------------------------------------------------------

    async def chat(self, agent_id: str, message: str | Sequence[Part | Mapping[str, Any]],
                   history: Sequence[Message | Mapping[str, Any]] = (), *, user: Principal | str | None = None,
                   preferred_provider: str | None = None, preferred_model: str | None = None,
                   max_tokens: int | None = None, temperature: float | None = None, request_id: str | None = None,
                   tools: Sequence[Tool] = (), tool_choice: ToolChoice | str | None = None,
                   parallel_tool_calls: bool | None = None, output: OutputFormat | None = None,
                   sampling: Sampling = NO_SAMPLING) -> Outcome:
        """Ask `agent_id`; `user` is a `Principal`, a user's name or id (their saved configs and
        limits apply), or None.  `message` is a string or the user turn's parts (`Text`, `Image`,
        `ToolResult`, or their JSON form); `history` holds `Message`s or `{role, content}` dicts whose
        content is a string or parts.  `tools` are added to the agent's own; `tool_choice` is a
        `ToolChoice`, `"auto"`, `"none"`, `"required"` or a tool's name.  Raises the `Outcome.error`
        (`AllLinksFailed`) when no link answered; an answer that calls tools has them in
        `outcome.response.tool_calls` (send their `ToolResult`s as the next message, with
        `outcome.history`)."""
        who = await self.principal(user)
        outcome = await self.run(who, AGENT_PREFIX + agent_id, *ask(message, history, RequestOptions(
            prefer_provider=preferred_provider, prefer_model=preferred_model, max_tokens=max_tokens,
            temperature=temperature, request_id=request_id, target_field="agentId", tools=tuple(tools),
            tool_choice=tool_choice_of(tool_choice), parallel_tool_calls=parallel_tool_calls, output=output,
            sampling=sampling)))
        if outcome.error is not None:
            raise outcome.error
        return outcome

    async def stream(self, agent_id: str, message: str | Sequence[Part | Mapping[str, Any]],
                     history: Sequence[Message | Mapping[str, Any]] = (), *, user: Principal | str | None = None,
                     preferred_provider: str | None = None, preferred_model: str | None = None,
                     max_tokens: int | None = None, temperature: float | None = None,
                     request_id: str | None = None, tools: Sequence[Tool] = (),
                     tool_choice: ToolChoice | str | None = None, parallel_tool_calls: bool | None = None,
                     output: OutputFormat | None = None,
                     sampling: Sampling = NO_SAMPLING) -> AsyncIterator[RelayEvent | OutputEvent]:
        """Ask `agent_id`, streaming: `AttemptEvent`s and the answer's events (`TextDelta`,
        `ToolCallStart` / `ToolCallDelta` / `ToolCallEnd`, `ReasoningDelta`), then one `Outcome`.
        The arguments are `chat`'s."""
        who = await self.principal(user)
        run = self.run(who, AGENT_PREFIX + agent_id, *ask(message, history, RequestOptions(
            prefer_provider=preferred_provider, prefer_model=preferred_model, max_tokens=max_tokens,
            temperature=temperature, request_id=request_id, target_field="agentId", tools=tuple(tools),
            tool_choice=tool_choice_of(tool_choice), parallel_tool_calls=parallel_tool_calls, output=output,
            sampling=sampling)))
        async with aclosing(aiter(run)) as events:
            async for event in events:
                yield event

    async def principal(self, who: Principal | str | None) -> Principal | None:
        """`who` as a principal: a user of the ledger's users table by id or name (with their own
        limits), else a caller of that id with the default limits; None stays None (local)."""
        if who is None or isinstance(who, Principal):
            return who
        found = self._principals.get(who)
        if found is not None and time.monotonic() - found[1] < _PRINCIPAL_TTL:
            return found[0]
        principal = None
        if self.ledger is not None:
            await self.start()
            principal = await self.ledger.principal(who)
        principal = principal or Principal(who, who)
        self._principals[who] = (principal, time.monotonic())
        return principal

    # -- operations --------------------------------------------------------------------------------

    def provider_status(self) -> list[ProviderStatus]:
        """Each provider: enabled or why not, where it is (no credentials), its circuits that are not closed."""
        circuits = self.breaker.snapshot()
        return [ProviderStatus(p.name, p.enabled, p.disabled_reason, without_credentials(p.base_url),
                               {m: state for (prov, m), state in sorted(circuits.items()) if prov == p.name})
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




_NO_OPTIONS = RequestOptions()
