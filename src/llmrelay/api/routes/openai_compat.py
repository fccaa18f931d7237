"""`/v1`: the OpenAI-compatible API, so any OpenAI SDK can point `base_url` here and keep its code.

`POST /v1/chat/completions` takes `model` as `agent:<agentId>` (the agent's chain with the
caller's saved config, its system prompt before the client's), `<provider>/<model>` (one link)
or a bare model name (the catalog's or price book's provider, else LLMRELAY_DEFAULT_PROVIDER),
plus OpenRouter's `models: [...]` as extra fallback links (see `openai_format.ModelResolver`).
The answer names who served it in `x-llmrelay-provider`, `x-llmrelay-fallback` (true/false) and,
when every attempt could be priced, `x-llmrelay-cost-usd` (exact decimal; not sent on streams,
whose headers leave before the cost is known).

Ledger rows: one per attempt as everywhere, with `agent_id` = the agent's id for `agent:` models
and `direct` for any other model.

Streams: the headers are held until the first text is ready, so a fallback before it stays
invisible and `x-llmrelay-provider` is right; then `chat.completion.chunk` frames (the first
with `role`), a chunk with `finish_reason`, with `stream_options.include_usage` a `choices: []`
chunk with `usage`, and `data: [DONE]`.  A stream that breaks after text ends with one
`data: {"error": …}` frame and no `[DONE]` (as OpenAI's do, so SDKs raise).  A client that goes
away closes the upstream call; its attempt is recorded with the tokens used so far.

Defaults where OpenAI has none to give: `max_tokens` falls back to the saved config, then
LLMRELAY_DEFAULT_MAX_TOKENS.  Tools, function calls, non-text content and `n` > 1 are refused
with a 400 naming the parameter; other unknown fields are ignored.

`GET /v1/models` lists every agent (`agent:<id>`, owned by `llmrelay`) and every catalog or priced
model of an enabled provider (`<provider>/<model>`); a disabled provider's models are left out.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import anyio
import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.datastructures import State
from starlette.responses import Response, StreamingResponse

from ...db.users import Principal
from ...ledger.pricing import money, request_cost
from ...providers.registry import known_providers
from ...relay import Relay
from ...routing.fallback import Outcome
from ...types import AllLinksFailed, Attempt, ChatRequest, Link, LLMRelayError, RequestContext, TextDelta
from ..deps import CurrentUser, admitted_user, current_user
from ..errors import Problem, as_problem
from ..openai_format import (
    ChatCompletionRequest,
    Chunks,
    ModelResolver,
    Target,
    completion,
    conversation,
    parse_request,
)

# -- the OpenAPI document only (the routes render their bodies with orjson, not through these) --------


class _PromptDetails(BaseModel):
    cached_tokens: int


class _CompletionDetails(BaseModel):
    reasoning_tokens: int


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: _PromptDetails
    completion_tokens_details: _CompletionDetails


class _AnswerMessage(BaseModel):
    role: Literal["assistant"]
    content: str
    refusal: None = None


class _Choice(BaseModel):
    index: int
    message: _AnswerMessage
    logprobs: None = None
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[_Choice]
    usage: CompletionUsage
    system_fingerprint: None = None


class ModelCard(BaseModel):
    id: str = Field(description="`agent:<agentId>` or `<provider>/<model>`")
    object: Literal["model"]
    created: int
    owned_by: str = Field(description="The provider, or `llmrelay` for an agent")


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


def _request_schema() -> dict[str, Any]:
    """`ChatCompletionRequest`'s JSON schema with its definitions inlined (for `openapi_extra`)."""
    schema = ChatCompletionRequest.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)


router = APIRouter(prefix="/v1", tags=["openai"])
JSON = "application/json"
_ERRORS: dict[int | str, dict[str, Any]] = {  # their body: OpenAI's error object (see errors.document_errors)
    status: {"description": what} for status, what in (
        (400, "Bad input (`param` names it), or the provider rejected the request"),
        (401, "Missing or invalid API key"), (404, "Unknown model or agent"),
        (413, "Body too large"), (429, "Rate limited (see Retry-After)"), (502, "No provider answered"))}


def resolver(state: State) -> ModelResolver:
    """The app's model resolver (made on first use)."""
    try:
        return state.openai_models
    except AttributeError:
        relay: Relay = state.relay
        ledger = relay.ledger
        state.openai_models = ModelResolver(
            relay.agents, known_providers(), config_lookup=relay.config_lookup,
            default_provider=relay.settings.default_provider,
            prices=(lambda: ledger.recorder.prices) if ledger is not None else (lambda: None))
        return state.openai_models


def _chat_request(body: ChatCompletionRequest, target: Target, default_max_tokens: int) -> ChatRequest:
    client_system, turns = conversation(body.messages)
    system = "\n\n".join(s for s in (target.system_prompt, *client_system) if s)
    config = target.config
    return ChatRequest(
        model=target.links[0].model, messages=tuple(turns), system=system or None,
        max_tokens=body.max_completion_tokens or body.max_tokens or (config.max_tokens if config else None)
        or default_max_tokens,
        temperature=body.temperature if body.temperature is not None else (config.temperature if config else None),
        stop=body.stop_sequences)


def _failed(exc: LLMRelayError) -> Problem:
    problem = as_problem(exc)
    if problem.code:
        problem.code = problem.code.replace("-", "_")
    return problem


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _tokens(attempts: list[Attempt]) -> int:
    return sum(a.usage.total_tokens for a in attempts if a.usage is not None)


def _cost_header(relay: Relay, attempts: list[Attempt]) -> dict[str, str]:
    if relay.ledger is None:
        return {}
    cost = request_cost(attempts, relay.ledger.recorder.prices)
    return {} if cost is None else {"x-llmrelay-cost-usd": money(cost)}  # type: ignore[dict-item]


@router.post(
    "/chat/completions", summary="Chat completion (OpenAI-compatible; `stream` for SSE)",
    response_model=ChatCompletion,
    openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": _request_schema()}}}},
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "The completion; with `stream`, `chat.completion.chunk` frames then `[DONE]`"},
               **_ERRORS})
async def chat_completions(request: Request) -> Response:
    # `AdmittedUser`'s two checks, called directly: FastAPI's dependency solving would add ~50 µs to every
    # request of the route the benchmark hammers
    user = await admitted_user(request, await current_user(request))
    body = parse_request(await request.body())
    state = request.app.state
    relay: Relay = state.relay
    await relay.start()  # a no-op once the app's lifespan has started it
    target = await resolver(state).resolve(body.model, body.models or (), user.user_id)
    chat = _chat_request(body, target, relay.settings.default_max_tokens)
    ctx = RequestContext(request.scope["state"]["request_id"], target.agent_id, user.user_id)
    if body.stream:
        return await _stream(request, relay, user, body, target, chat, ctx)
    limits = state.limits
    try:
        outcome = await relay.executor.complete(target.links, chat, relay.observer(ctx))
    except AllLinksFailed as exc:
        await limits.spend_tokens(user, _tokens(exc.attempts))
        raise _failed(exc) from None
    await limits.spend_tokens(user, _tokens(outcome.attempts))
    resp = outcome.response
    assert resp is not None
    headers = {"x-llmrelay-provider": resp.provider, "x-llmrelay-fallback": _bool(outcome.fallback_used),
               **_cost_header(relay, outcome.attempts)}
    return Response(completion("chatcmpl-" + ctx.request_id, int(time.time()), resp), headers=headers,
                    media_type=JSON)


async def _stream(request: Request, relay: Relay, user: Principal, body: ChatCompletionRequest, target: Target,
                  chat: ChatRequest, ctx: RequestContext) -> Response:
    serving: list[Link] = []
    attempts: list[Attempt] = []
    observe = relay.observer(ctx)

    def observer(attempt: Attempt) -> None:
        attempts.append(attempt)
        if observe is not None:
            observe(attempt)

    events = relay.executor.stream(target.links, chat, observer, on_commit=serving.append)
    spend = _Spender(request.app.state.limits, user, attempts)
    try:  # wait for the first text (or the end): until then a failure is an ordinary HTTP error
        first: Any = await anext(events)
        while not isinstance(first, TextDelta | Outcome):
            first = await anext(events)
    except BaseException:
        await events.aclose()
        raise
    if isinstance(first, Outcome):
        await events.aclose()
        if first.error is not None:
            await spend()
            raise _failed(first.error)
        link, fallback = first.link, first.fallback_used
    else:
        link = serving[0]
        fallback = next(i for i, x in enumerate(target.links) if x is link) > 0
    assert link is not None
    chunks = Chunks("chatcmpl-" + ctx.request_id, int(time.time()), link.model, body.include_usage)
    frames = _frames(events, first, chunks, body.include_usage, spend)
    return StreamingResponse(frames, media_type="text/event-stream", headers={
        "cache-control": "no-cache", "x-accel-buffering": "no", "x-llmrelay-provider": link.provider,
        "x-llmrelay-fallback": _bool(fallback)})


class _Spender:
    """Counts a stream's tokens against the caller's budget once, however the stream ends."""

    def __init__(self, limits: Any, user: Principal, attempts: list[Attempt]) -> None:
        self.limits, self.user, self.attempts = limits, user, attempts
        self.done = False

    async def __call__(self, shielded: bool = False) -> None:
        if self.done:
            return
        self.done = True
        if not shielded:
            await self.limits.spend_tokens(self.user, _tokens(self.attempts))
            return
        with anyio.move_on_after(5, shield=True):  # runs even while the stream is being cancelled
            await self.limits.spend_tokens(self.user, _tokens(self.attempts))


async def _frames(events: AsyncIterator[Any], first: TextDelta | Outcome, chunks: Chunks, include_usage: bool,
                  spend: _Spender) -> AsyncIterator[bytes]:
    try:
        outcome: Outcome | None = None
        if isinstance(first, Outcome):  # an empty answer
            yield chunks.first("")
            outcome = first
        else:
            yield chunks.first(first.text)
            async for event in events:
                if isinstance(event, TextDelta):
                    yield chunks.text(event.text)
                elif isinstance(event, Outcome):
                    outcome = event
                    break
        await spend()
        assert outcome is not None  # the executor always ends with one
        if outcome.error is not None:
            kind = getattr(outcome.error, "kind", None)
            yield Chunks.error(f"the stream broke after text was sent: {outcome.error}", kind and kind.value)
            return
        resp = outcome.response
        assert resp is not None
        yield chunks.finish(resp.finish_reason)
        if include_usage:
            yield chunks.usage(resp.usage)
        yield Chunks.DONE
    finally:  # done, or the client went away: either way the upstream call ends now
        await events.aclose()
        await spend(shielded=True)


def _card(model: str, owner: str, created: int) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": created, "owned_by": owner}


@router.get("/models", summary="Agents and models usable as `model` (OpenAI-compatible)", response_model=ModelList,
            responses={401: _ERRORS[401]})
async def list_models(request: Request, user: CurrentUser) -> Response:
    relay: Relay = request.app.state.relay
    created = int(time.time())
    enabled = [p for p in relay.providers if p not in relay.executor.disabled]
    data = [_card("agent:" + a, "llmrelay", created) for a in relay.agents]
    data += [_card(f"{p}/{m}", p, created) for p, m in resolver(request.app.state).catalog(enabled)]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type=JSON)


@router.get("/models/{model:path}", summary="One model (OpenAI-compatible)", response_model=ModelCard,
            responses={401: _ERRORS[401], 404: _ERRORS[404]})
async def get_model(model: str, request: Request, user: CurrentUser) -> Response:
    owner = resolver(request.app.state).owner(model)
    if owner is None:
        raise Problem(404, f"the model {model!r} does not exist", field="model", code="model_not_found")
    return Response(orjson.dumps(_card(model, owner, int(time.time()))), media_type=JSON)
