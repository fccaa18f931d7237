"""Which links a request walks, in which order.

The order, first to last: the request's preferred provider/model, else the user's saved
config for the agent (its primary and fallback chain), else the agent's own chain (default
provider first, then by priority).  A link appears once: the first occurrence wins.  Whether
a link can be used right now (key set, circuit closed) is decided by the fallback executor
when it reaches the link, so that the reason is recorded with the attempt.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..agents import Agent
from ..types import ChainConfig, InvalidRequest, Link


def resolve_chain(agent: Agent, *, preferred_provider: str | None = None, preferred_model: str | None = None,
                  config: ChainConfig | None = None) -> list[Link]:
    base = config.links if config is not None else agent.links
    retries = {(link.provider, link.model): link.max_retries for link in agent.links}
    base = [Link(x.provider, x.model, x.max_retries if x.max_retries is not None else
                 retries.get((x.provider, x.model))) for x in base]
    first = _preferred(base, agent, preferred_provider, preferred_model)
    if first is not None:
        first = Link(first.provider, first.model, retries.get((first.provider, first.model)))
    return _unique([first, *base] if first is not None else base)


def _preferred(base: list[Link], agent: Agent, provider: str | None, model: str | None) -> Link | None:
    if provider and model:
        return Link(provider, model)
    if provider:
        for link in base:
            if link.provider == provider:
                return link
        raise InvalidRequest(f"agent {agent.id!r} has no {provider} model in its chain: "
                             f"name the model too", "preferredModel")
    if model:
        for link in base:
            if link.model == model:
                return link
        raise InvalidRequest(f"model {model!r} is not in agent {agent.id!r}'s chain: name its provider too",
                             "preferredProvider")
    return None


def _unique(links: Iterable[Link]) -> list[Link]:
    seen: set[tuple[str, str]] = set()
    out: list[Link] = []
    for link in links:
        key = (link.provider, link.model)
        if key not in seen:
            seen.add(key)
            out.append(link)
    return out
