"""Embeddings on the fallback walk: which links can make a request's vectors (decided before a call, as
`routing.fit` decides for a chat), and the call made of each link (`FallbackExecutor.walk`).

A chain falls back only between models whose vectors have one dimension: vectors of two lengths cannot
share an index.  The chain's dimension is the request's `dimensions` when it asks for one (an embedding
agent's own `dimensions` otherwise), else that of the first link the catalog knows as an embedding model.
A link is skipped, with the reason, when

- its provider has no embeddings (`embeddings` not in its adapter's `takes`: Anthropic);
- the catalog knows its model and it is not an embedding model;
- the request asks for `dimensions` its model cannot give (not its own length, and it cannot shorten
  its vectors, or not to that many);
- it would give vectors of another length than the chain's;
- an input is clearly too long for its context (five characters a token, a low estimate on purpose).

A model the catalog does not know is tried (its provider judges), and its answer is checked instead:
vectors of another length than the chain's fail the attempt (`server_error`, not retried: the next link
is tried).  Asking a model for its own length is asking for nothing, and some refuse the question
(OpenAI's text-embedding-ada-002): `dimensions` equal to a model's own is not sent to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from ..catalog import embedding_facts, facts
from ..providers.base import Provider
from ..types import EmbeddingRequest, EmbeddingResponse, ErrorKind, Link, ProviderError, Usage
from .fit import CHARS_PER_TOKEN, Unfit

EMBEDDINGS = "embeddings"
"""What an adapter lists in `takes` when it has embeddings."""


def chain_dimension(links: Sequence[Link], dimensions: int | None) -> int | None:
    """The length every vector of the chain must have: `dimensions` when asked, else the first known
    embedding model's; None when neither is known."""
    if dimensions is not None:
        return dimensions
    for link in links:
        f = embedding_facts(link.provider, link.model)
        if f is not None:
            return f.dimensions
    return None


class EmbeddingFit:
    """Whether a link can make the vectors of one request, as (need, reason) when it cannot; `need` names
    the request's parameter that rules it out (`model`, `dimensions`, `input`)."""

    def __init__(self, providers: Mapping[str, Provider], dimension: int | None) -> None:
        self.providers = providers
        self.dimension = dimension

    def __call__(self, link: Link, request: EmbeddingRequest) -> Unfit | None:
        provider = self.providers.get(link.provider)
        if provider is not None and EMBEDDINGS not in provider.takes:
            return Unfit("model", f"{link.provider} has no embedding models")
        f = facts(link.provider, link.model)
        if f is None:
            return None
        if f.dimensions is None:
            return Unfit("model", f"{link} is not an embedding model")
        asked = request.dimensions
        if asked is not None and not f.gives(asked):
            can = f"{f.dimensions} or fewer" if f.shortens else f"only {f.dimensions}"
            return Unfit("dimensions", f"{link} cannot give {asked}-dimensional vectors (it gives {can})")
        if asked is None and self.dimension is not None and f.dimensions != self.dimension:
            return Unfit("model", f"{link} gives {f.dimensions}-dimensional vectors, not the chain's {self.dimension}: "
                                  "a chain falls back only between models of one dimension")
        longest = max(map(len, request.inputs), default=0) // CHARS_PER_TOKEN
        if f.context_window and longest > f.context_window:
            return Unfit("input", f"{link}'s context of {f.context_window} tokens is too small for an input of at "
                                  f"least {longest} tokens")
        return None


class EmbeddingCall:
    """The call made of each link: `Provider.embed`, then its vectors' length checked against the chain's.
    (The tokens of an answer refused for its vectors' length are not counted: the attempt fails before
    the walk learns them.)"""

    def __init__(self, dimension: int | None) -> None:
        self.dimension = dimension

    async def __call__(self, provider: Provider, request: EmbeddingRequest) -> tuple[EmbeddingResponse, Usage]:
        if request.dimensions is not None:
            f = embedding_facts(provider.name, request.model)
            if f is not None and f.dimensions == request.dimensions:
                request = dataclasses.replace(request, dimensions=None)
        resp = await provider.embed(request)
        expected = self.dimension
        if expected is not None:
            wrong = next((len(v) for v in resp.vectors if len(v) != expected), None)
            if wrong is not None:
                raise ProviderError(ErrorKind.SERVER_ERROR, f"answered {wrong}-dimensional vectors where the chain's "
                                    f"are {expected}-dimensional", provider=provider.name, model=request.model,
                                    retryable=False)
        return resp, resp.usage
