"""What a request's target names, as the chain of links it walks.

    agent:<agentId>        the agent's chain with the caller's saved config for it (and its
                           system prompt); a preferred provider/model goes first
    <provider>/<model>     one link, when the first segment names a provider
                           (`openrouter/meta-llama/llama-3.1-70b-instruct` -> openrouter)
    <model>                the provider the catalog or the price book knows it from, else
                           LLMRELAY_DEFAULT_PROVIDER, else `UnknownModel`

Extra fallback targets (OpenRouter's `models: [...]`) append their links after the target's chain,
each link once.  Every ingress resolves through here (`Relay.run`), so `agent:general-agent` means
the same chain on /v1, on the agents API and in the CLI.  What a name that is not an agent means is
cached (the cache is dropped whenever the price book is reloaded): the hot path is one dict lookup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Protocol

from ..agents import Agent
from ..catalog import KNOWN_MODELS, plausible, provider_for
from ..types import ChainConfig, InvalidRequest, Link, Target, UnknownAgent, UnknownModel
from .chain import resolve_chain

AGENT_PREFIX = "agent:"
DIRECT_AGENT = "direct"
"""The ledger's agent_id for a request that names a model rather than an agent."""
WILDCARD = "*"
"""A price row's model that prices every other model of its provider: not a model of its own."""

ConfigLookup = Callable[[str | None, str], Awaitable[ChainConfig | None]]


class PricedModel(Protocol):
    provider: str
    model: str


class PriceList(Protocol):
    """What targets need of the ledger's price book: the prices in effect now."""

    def current(self) -> Iterable[PricedModel]: ...


class Targets:
    MAX_CACHED = 4096

    def __init__(self, agents: Mapping[str, Agent], providers: Callable[[], Collection[str]], *,
                 config_lookup: ConfigLookup | None = None, default_provider: str | None = None,
                 prices: Callable[[], PriceList | None] = lambda: None) -> None:
        self.agents = agents
        self._providers = providers
        self.config_lookup = config_lookup
        self.default_provider = default_provider
        self._prices = prices
        self._book: PriceList | None = None
        self._priced: frozenset[tuple[str, str]] = frozenset()
        self._direct: dict[str, Link | str] = {}

    async def resolve(self, target: str, user_id: str | None = None, *, fallbacks: Sequence[str] = (),
                      prefer_provider: str | None = None, prefer_model: str | None = None,
                      field: str = "model") -> Target:
        """The chain `target` names for `user_id`, then each fallback's links (a link already in the
        chain is not repeated).  Raises `UnknownAgent`, `UnknownModel` or `InvalidRequest`, whose
        `field` is `field` for the target and `models[i]` for a fallback."""
        if target.startswith(AGENT_PREFIX):
            agent = self._agent(target, field)
            if prefer_provider is not None and prefer_provider not in self._providers():
                raise InvalidRequest(f"unknown provider {prefer_provider!r} (known: "
                                     f"{', '.join(self._providers())})", "preferredProvider")
            config = await self.config_lookup(user_id, agent.id) if self.config_lookup else None
            links = resolve_chain(agent, preferred_provider=prefer_provider, preferred_model=prefer_model,
                                  config=config)
            agent_id, system_prompt = agent.id, agent.system_prompt
            tools = tuple(t.tool() for t in agent.tools)
            output = agent.output_format.format() if agent.output_format is not None else None
        else:
            if prefer_provider is not None or prefer_model is not None:
                raise InvalidRequest("a preferred provider or model applies to an agent's chain only",
                                     "preferredProvider" if prefer_provider is not None else "preferredModel")
            config, links, agent_id, system_prompt = None, [self.direct(target, field)], DIRECT_AGENT, ""
            tools, output = (), None
        if fallbacks:
            seen = {(x.provider, x.model) for x in links}
            for i, name in enumerate(fallbacks):
                for link in await self._links(name, f"models[{i}]", user_id):
                    if (link.provider, link.model) not in seen:
                        seen.add((link.provider, link.model))
                        links.append(link)
        return Target(agent_id, tuple(links), system_prompt, config, tools, output)

    def owner(self, model: str) -> str | None:
        """Who serves `model` (a provider, or `llmrelay` for an agent); None when nobody does."""
        if model.startswith(AGENT_PREFIX):
            return "llmrelay" if model[len(AGENT_PREFIX):] in self.agents else None
        try:
            return self.direct(model, "model").provider
        except UnknownModel:
            return None

    def catalog(self, enabled: Collection[str]) -> Iterator[tuple[str, str]]:
        """(provider, model) of every catalog and priced model of the `enabled` providers, sorted."""
        pairs = {*KNOWN_MODELS, *self.priced()}
        return iter(sorted(p for p in pairs if p[0] in enabled))

    def priced(self) -> frozenset[tuple[str, str]]:
        """The provider/model pairs with a price in effect now (the provider-wide `*` rows left out)."""
        book = self._prices()
        if book is not self._book:
            self._book = book
            self._priced = frozenset((p.provider, p.model) for p in book.current() if p.model != WILDCARD) \
                if book is not None else frozenset()
            self._direct = {}
        return self._priced

    def direct(self, model: str, field: str = "model") -> Link:
        """The one link a provider/model or bare model name stands for."""
        priced = self.priced()
        found = self._direct.get(model)
        if found is None:
            found = self._lookup(model, priced)
            if len(self._direct) >= self.MAX_CACHED:
                self._direct.clear()
            self._direct[model] = found
        if isinstance(found, str):
            raise UnknownModel(model, found, field)
        return found

    async def _links(self, model: str, field: str, user_id: str | None) -> list[Link]:
        if model.startswith(AGENT_PREFIX):
            agent = self._agent(model, field)
            config = await self.config_lookup(user_id, agent.id) if self.config_lookup else None
            return resolve_chain(agent, config=config)
        return [self.direct(model, field)]

    def _agent(self, target: str, field: str) -> Agent:
        agent = self.agents.get(target[len(AGENT_PREFIX):])
        if agent is None:
            raise UnknownAgent(target[len(AGENT_PREFIX):], list(self.agents), field)
        return agent

    def _lookup(self, model: str, priced: frozenset[tuple[str, str]]) -> Link | str:
        """The link, or why there is none."""
        provider, slash, rest = model.partition("/")
        if slash and provider in self._providers():
            if not rest:
                return f"name a model after {provider}/"
            if (provider, rest) in priced or plausible(provider, rest):
                return Link(provider, rest)
            return f"{provider} has no such model in the catalog or the price book, and it does not look like " \
                   f"one of its model ids"
        found = provider_for(model, priced) or self.default_provider
        if found is None:
            return ("neither the catalog nor the price book knows it and LLMRELAY_DEFAULT_PROVIDER is not set; "
                    "name it `<provider>/<model>` or `agent:<agentId>`")
        return Link(found, model)
