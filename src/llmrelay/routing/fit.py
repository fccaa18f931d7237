"""Whether a link can take a request, decided before it is called (the fallback executor skips a link
that cannot, with the reason, rather than spend a call on a certain failure).

Three checks, cheapest first, all skipped for a plain text request that fits:

- the provider: every name in `ChatRequest.needs` must be among what its adapter `takes`
  (`anthropic cannot take 'seed'`);
- the model, from the catalog's capability flags: tools, images (vision), JSON Schema output.  A model
  the catalog does not know is assumed able: its provider says otherwise if it is not;
- the context window: the request's text at five characters a token (a low estimate on purpose, so a
  link is skipped only when the input clearly cannot fit) against the model's known window.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

from ..catalog import ModelFacts, facts
from ..providers.base import Provider
from ..types import ChatRequest, Link

CHARS_PER_TOKEN = 5
SMALLEST_WINDOW = 4096
"""No model llmrelay knows has a smaller context window: a shorter input is not checked."""
_MODEL_NEEDS = (("tools", "tools", "tool calling"), ("images", "vision", "images"),
                ("response_format=json_schema", "json_schema", "JSON Schema output"))


class Unfit(NamedTuple):
    """Why a link cannot take a request: what it lacks (a name of `ChatRequest.needs`, or `messages` for
    an input too long) and the reason recorded with the skip."""

    need: str
    reason: str


class Fit:
    def __init__(self, providers: Mapping[str, Provider],
                 model_facts: Callable[[str, str], ModelFacts | None] = facts) -> None:
        self.providers = providers
        self.facts = model_facts

    def __call__(self, link: Link, request: ChatRequest) -> Unfit | None:
        needs = request.needs
        f = None
        if needs:
            provider = self.providers.get(link.provider)
            missing = sorted(needs - provider.takes) if provider is not None else ()
            if missing:
                return Unfit(missing[0], f"{link.provider} cannot take {', '.join(repr(m) for m in missing)}")
            f = self.facts(link.provider, link.model)
            if f is not None:
                for need, flag, what in _MODEL_NEEDS:
                    if need in needs and getattr(f, flag) is False:
                        return Unfit(need, f"{link} has no {what} (the request uses {need.split('=')[0]!r})")
        if request.input_chars > SMALLEST_WINDOW * CHARS_PER_TOKEN:
            f = f or self.facts(link.provider, link.model)
            if f is not None and f.context_window and request.input_chars // CHARS_PER_TOKEN > f.context_window:
                return Unfit("messages", f"{link}'s context window of {f.context_window} tokens is too small for "
                                         f"the input (at least {request.input_chars // CHARS_PER_TOKEN} tokens)")
        return None
