"""OpenAI's chat-completions format, in and out, and what an OpenAI `model` name means here.

In: `ChatCompletionRequest` (validated from the raw body; unknown fields ignored), its messages
turned into a system prompt and text turns (`conversation`).  Out: the `chat.completion` body
(`completion`), the pre-rendered `chat.completion.chunk` SSE frames of one stream (`Chunks`).

`ModelResolver` turns `model` (and OpenRouter's `models` fallbacks) into a chain:

    agent:<agentId>        the agent's chain, with the caller's saved config for it
    <provider>/<model>     one link, when the first segment names a provider
                           (`openrouter/meta-llama/llama-3.1-70b-instruct` -> openrouter)
    <model>                the provider the catalog or the price book knows it from, else
                           LLMRELAY_DEFAULT_PROVIDER, else 404 `model_not_found`
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..agents import Agent
from ..catalog import KNOWN_MODELS, MODEL_PATTERNS, plausible, provider_for
from ..ledger.pricing import WILDCARD, PriceBook
from ..routing.chain import ChainConfig, resolve_chain
from ..types import ChatResponse, Link, Message, Usage
from .errors import Problem

AGENT_PREFIX = "agent:"
DIRECT_AGENT = "direct"
"""The ledger's agent_id for a request that names a model rather than an agent."""
MAX_TEXT = 1_000_000

# -- the request ------------------------------------------------------------------------------------

_CONTENT_DOC = {"anyOf": [{"type": "string"}, {"type": "null"}, {"type": "array", "items": {
    "type": "object", "required": ["type", "text"],
    "properties": {"type": {"const": "text"}, "text": {"type": "string"}}}}]}


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Any = Field(None, json_schema_extra=_CONTENT_DOC,
                         description="A string, or an array of text parts (other parts are refused)")
    tool_calls: list[Any] | None = Field(None, description="Not supported: refused")
    function_call: Any = Field(None, description="Not supported: refused")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=300,
                       description="`agent:<agentId>`, `<provider>/<model>`, or a model name the catalog knows")
    messages: list[ChatMessage] = Field(min_length=1, max_length=10_000)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    max_completion_tokens: int | None = Field(None, ge=1, le=1_000_000, description="Wins over max_tokens")
    temperature: float | None = Field(None, ge=0, le=2)
    stop: str | list[str] | None = Field(None, description="Up to 16 stop sequences")
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(None, description="Accepted and ignored: the API key says who is asking")
    models: list[str] | None = Field(None, max_length=16,
                                     description="OpenRouter's fallbacks: tried in order after `model`'s chain")
    n: int | None = Field(None, description="Only 1 is supported")
    tools: list[Any] | None = Field(None, description="Not supported: a non-empty list is refused")
    functions: list[Any] | None = Field(None, description="Not supported: a non-empty list is refused")

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    @property
    def stop_sequences(self) -> tuple[str, ...]:
        stop = self.stop
        return () if not stop else (stop,) if isinstance(stop, str) else tuple(stop)


def parse_request(raw: bytes) -> ChatCompletionRequest:
    """The body validated, or a 400 in OpenAI's terms naming the parameter."""
    try:
        body = ChatCompletionRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise _invalid(exc) from None
    unsupported = ("tools" if body.tools else "functions" if body.functions else
                   "n" if body.n not in (None, 1) else None)
    if unsupported is not None:
        raise Problem(400, f"{unsupported!r} is not supported: llmrelay relays text conversations "
                           "(one answer, no tool calls)", field=unsupported, code="unsupported_parameter")
    if len(body.stop_sequences) > 16 or any(not s or len(s) > 1000 for s in body.stop_sequences):
        raise Problem(400, "'stop' takes up to 16 non-empty strings", field="stop", code="invalid_value")
    return body


def _invalid(exc: ValidationError) -> Problem:
    err = exc.errors(include_url=False, include_input=False)[0]
    if err["type"] == "json_invalid":
        return Problem(400, f"the body is not valid JSON: {err['msg']}", code="invalid_json")
    param = _param(err["loc"])
    if err["type"] == "missing":
        return Problem(400, f"missing required parameter: {param!r}", field=param, code="missing_required_parameter")
    where = f"invalid {param!r}: " if param else "invalid body: "
    return Problem(400, where + err["msg"], field=param, code="invalid_value")


def _param(loc: Sequence[int | str]) -> str | None:
    """('messages', 0, 'role') -> 'messages[0].role', as OpenAI names parameters."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def conversation(messages: Sequence[ChatMessage]) -> tuple[list[str], list[Message]]:
    """(system texts, turns): system and developer messages become the system prompt, in order."""
    system: list[str] = []
    turns: list[Message] = []
    for i, m in enumerate(messages):
        if m.role in ("tool", "function") or m.tool_calls or m.function_call:
            raise Problem(400, f"messages[{i}]: tool and function messages are not supported: llmrelay relays "
                               "text conversations", field=f"messages[{i}]", code="unsupported_message")
        text = _text(m.content, i)
        if m.role in ("system", "developer"):
            system.append(text)
        else:
            turns.append(Message(m.role, text))  # type: ignore[arg-type]
    if not turns:
        raise Problem(400, "messages needs at least one user or assistant message", field="messages",
                      code="invalid_value")
    return system, turns


def _text(content: Any, i: int) -> str:
    if isinstance(content, str):
        if len(content) > MAX_TEXT:
            raise Problem(400, f"messages[{i}].content is over {MAX_TEXT} characters", field=f"messages[{i}].content",
                          code="invalid_value")
        return content
    if isinstance(content, list):
        return "".join(_part_text(part, i, j) for j, part in enumerate(content))
    what = "missing" if content is None else f"a {type(content).__name__}"
    raise Problem(400, f"messages[{i}].content must be a string or an array of text parts, not {what}",
                  field=f"messages[{i}].content", code="invalid_value")


def _part_text(part: Any, i: int, j: int) -> str:
    """One content part's text (parts are joined without a separator, as OpenAI reads them)."""
    param = f"messages[{i}].content[{j}]"
    kind = part.get("type") if isinstance(part, dict) else None
    if kind != "text":
        raise Problem(400, f"{param}: only text parts are supported, not {kind or 'this'!r}", field=param,
                      code="unsupported_content")
    text = part.get("text")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise Problem(400, f"{param}.text must be a string of at most {MAX_TEXT} characters", field=f"{param}.text",
                      code="invalid_value")
    return text


# -- what `model` means ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved `model`: the chain to walk and whose it is."""

    agent_id: str
    """The ledger's agent_id: the agent's id, or `direct`."""
    links: list[Link]
    system_prompt: str = ""
    config: ChainConfig | None = None


ConfigLookup = Callable[[str | None, str], Awaitable[ChainConfig | None]]


def _not_found(model: str, param: str, why: str) -> Problem:
    return Problem(404, f"the model {model!r} does not exist: {why}", field=param, code="model_not_found")


class ModelResolver:
    """Resolves OpenAI model names.  What a name that is not an agent means is cached (the cache is
    dropped whenever the price book is reloaded), so the hot path is a dictionary lookup."""

    MAX_CACHED = 4096

    def __init__(self, agents: Mapping[str, Agent], providers: Collection[str], *,
                 config_lookup: ConfigLookup | None = None, default_provider: str | None = None,
                 prices: Callable[[], PriceBook | None] = lambda: None) -> None:
        self.agents = agents
        self.providers = frozenset(providers)
        self.config_lookup = config_lookup
        self.default_provider = default_provider
        self._prices = prices
        self._book: PriceBook | None = None
        self._priced: frozenset[tuple[str, str]] = frozenset()
        self._direct: dict[str, Link | str] = {}

    def priced(self) -> frozenset[tuple[str, str]]:
        """The provider/model pairs with a price in effect now (the provider-wide `*` rows left out)."""
        book = self._prices()
        if book is not self._book:
            self._book = book
            self._priced = frozenset((p.provider, p.model) for p in book.current() if p.model != WILDCARD) \
                if book is not None else frozenset()
            self._direct = {}
        return self._priced

    async def resolve(self, model: str, fallbacks: Sequence[str] = (), user_id: str | None = None) -> Target:
        """`model`'s chain, then each fallback's links (a link already in the chain is not repeated)."""
        if model.startswith(AGENT_PREFIX):
            agent = self._agent(model, "model")
            config = await self.config_lookup(user_id, agent.id) if self.config_lookup else None
            target = Target(agent.id, resolve_chain(agent, config=config), agent.system_prompt, config)
        else:
            target = Target(DIRECT_AGENT, [self.direct(model, "model")])
        if fallbacks:
            seen = {(x.provider, x.model) for x in target.links}
            for i, name in enumerate(fallbacks):
                for link in await self._links(name, f"models[{i}]", user_id):
                    if (link.provider, link.model) not in seen:
                        seen.add((link.provider, link.model))
                        target.links.append(link)
        return target

    def owner(self, model: str) -> str | None:
        """Who serves `model` (a provider, or `llmrelay` for an agent); None when nobody does."""
        if model.startswith(AGENT_PREFIX):
            return "llmrelay" if model[len(AGENT_PREFIX):] in self.agents else None
        try:
            return self.direct(model, "model").provider
        except Problem:
            return None

    async def _links(self, model: str, param: str, user_id: str | None) -> list[Link]:
        if model.startswith(AGENT_PREFIX):
            agent = self._agent(model, param)
            config = await self.config_lookup(user_id, agent.id) if self.config_lookup else None
            return resolve_chain(agent, config=config)
        return [self.direct(model, param)]

    def _agent(self, model: str, param: str) -> Agent:
        agent = self.agents.get(model[len(AGENT_PREFIX):])
        if agent is None:
            raise _not_found(model, param, f"no such agent (known: {', '.join(sorted(self.agents))})")
        return agent

    def direct(self, model: str, param: str) -> Link:
        """The one link a provider/model or bare model name stands for."""
        priced = self.priced()
        found = self._direct.get(model)
        if found is None:
            found = self._lookup(model, priced)
            if len(self._direct) >= self.MAX_CACHED:
                self._direct.clear()
            self._direct[model] = found
        if isinstance(found, str):
            raise _not_found(model, param, found)
        return found

    def _lookup(self, model: str, priced: frozenset[tuple[str, str]]) -> Link | str:
        """The link, or why there is none."""
        provider, slash, rest = model.partition("/")
        if slash and provider in self.providers:
            if not rest:
                return f"name a model after {provider}/"
            if (provider, rest) in priced or plausible(provider, rest) or provider not in MODEL_PATTERNS:
                return Link(provider, rest)
            return f"{provider} has no such model in the catalog or the price book, and it does not look like " \
                   f"one of its model ids"
        found = provider_for(model, priced) or self.default_provider
        if found is None:
            return ("neither the catalog nor the price book knows it and LLMRELAY_DEFAULT_PROVIDER is not set; "
                    "name it `<provider>/<model>` or `agent:<agentId>`")
        return Link(found, model)

    def catalog(self, enabled: Collection[str]) -> Iterator[tuple[str, str]]:
        """(provider, model) of every catalog and priced model of the `enabled` providers, sorted."""
        pairs = {*KNOWN_MODELS, *self.priced()}
        return iter(sorted(p for p in pairs if p[0] in enabled))


# -- the response ------------------------------------------------------------------------------------


def usage_json(u: Usage) -> dict[str, Any]:
    return {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens, "total_tokens": u.total_tokens,
            "prompt_tokens_details": {"cached_tokens": u.cached_input_tokens},
            "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens}}


def _finish(reason: str | None) -> str:
    return "stop" if reason in (None, "error") else reason  # type: ignore[return-value]


def completion(completion_id: str, created: int, resp: ChatResponse) -> bytes:
    """The `chat.completion` body."""
    return orjson.dumps({
        "id": completion_id, "object": "chat.completion", "created": created, "model": resp.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": resp.text, "refusal": None},
                     "logprobs": None, "finish_reason": _finish(resp.finish_reason)}],
        "usage": usage_json(resp.usage), "system_fingerprint": None,
    })


class Chunks:
    """The `chat.completion.chunk` SSE frames of one stream, their constant parts rendered once."""

    DONE = b"data: [DONE]\n\n"

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        head = b"data: " + orjson.dumps({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                                         "model": model})[:-1]
        end = b',"usage":null}\n\n' if include_usage else b"}\n\n"
        self._delta = head + b',"choices":[{"index":0,"delta":{'
        self._delta_end = b'},"logprobs":null,"finish_reason":null}]' + end
        self._finish = head + b',"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":'
        self._finish_end = b"}]" + end
        self._usage = head + b',"choices":[],"usage":'

    def first(self, text: str) -> bytes:
        return self._delta + b'"role":"assistant","content":' + orjson.dumps(text) + self._delta_end

    def text(self, text: str) -> bytes:
        return self._delta + b'"content":' + orjson.dumps(text) + self._delta_end

    def finish(self, reason: str | None) -> bytes:
        return self._finish + orjson.dumps(_finish(reason)) + self._finish_end

    def usage(self, u: Usage) -> bytes:
        return self._usage + orjson.dumps(usage_json(u)) + b"}\n\n"

    @staticmethod
    def error(message: str, code: str | None) -> bytes:
        """The frame that ends a stream that broke after text went out (OpenAI SDKs raise `APIError`)."""
        return b"data: " + orjson.dumps({"error": {"message": message, "type": "api_error", "param": None,
                                                   "code": code}}) + b"\n\n"
