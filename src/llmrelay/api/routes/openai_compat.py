"""`/v1`: the OpenAI-compatible API, so any OpenAI SDK can point `base_url` here and keep its code.

`POST /v1/chat/completions` takes `model` as `agent:<agentId>` (the agent's chain with the
caller's saved config, its system prompt before the client's, its tools with the client's),
`<provider>/<model>` (one link) or a bare model name (the catalog's or price book's provider, else
LLMRELAY_DEFAULT_PROVIDER), plus OpenRouter's `models: [...]` as extra fallback links (see
`routing.targets`).  The route is a codec around `Relay.run`, as every ingress is: parse
(`api.openai_format`), run, render (`api.openai_answer`).

Accepted, and passed on to every link: messages with text and images (`image_url`: http(s) or
base64 `data:` URLs) and the tool loop (assistant `tool_calls`, `tool` messages), `tools`,
`tool_choice`, `parallel_tool_calls`, `response_format` (`json_object`, `json_schema`), `temperature`,
`top_p`, `top_k` (OpenRouter's and vLLM's), `seed`, `presence_penalty`, `frequency_penalty`,
`logit_bias`, `reasoning_effort` (low, medium, high), `stop`, `max_tokens` / `max_completion_tokens`,
`user` / `safety_identifier` (the end user's id, for providers that take one), `stream` and
`stream_options.include_usage`, `n` (1 only) and `modalities` (["text"] only).  A link whose provider
or model cannot take what the request asks for is skipped with the reason; when no link can, the
answer is a 400 naming the parameter (`unsupported_parameter`).  Every other parameter OpenAI
defines (logprobs, audio, store, metadata, service_tier, …) is refused with a 400 that names it and
says why (null or off is accepted), and one OpenAI does not define as OpenAI refuses it.

The answer names who served it in `x-llmrelay-provider`, `x-llmrelay-fallback` (true/false),
when every attempt could be priced `x-llmrelay-cost-usd` (exact decimal), and when JSON output was
asked for `x-llmrelay-structured-output` (`native`: the provider's own JSON mode; `tool`: a forced
tool call whose arguments are the answer).  The cost and structured-output headers are not sent on
streams, whose headers leave before either is known.  An answer that calls tools has `content`
null, `tool_calls`, and finish `tool_calls`; the model's reasoning, when the provider shows it, is
`message.reasoning_content`.

Ledger rows: one per attempt as everywhere, with `agent_id` = the agent's id for `agent:` models
and `direct` for any other model.

Streams: the headers are held until the first output (text, a tool call, reasoning) is ready, so a
fallback before it stays invisible and `x-llmrelay-provider` is right; then `chat.completion.chunk`
frames (the first with `role`; tool calls as OpenAI's fragments, reasoning as
`delta.reasoning_content`), a chunk with `finish_reason`, with `stream_options.include_usage` a
`choices: []` chunk with `usage`, and `data: [DONE]`.  A stream that breaks after output ends with
one `data: {"error": …}` frame and no `[DONE]` (as OpenAI's do, so SDKs raise).  A client that goes
away closes the upstream call; its attempt is recorded with the tokens used so far.

Defaults where OpenAI has none to give: `max_tokens` falls back to the saved config, then
LLMRELAY_DEFAULT_MAX_TOKENS.

`GET /v1/models` lists every agent (`agent:<id>`, owned by `llmrelay`) and every catalog or priced
model of an enabled provider (`<provider>/<model>`); a disabled provider's models are left out.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.responses import Response, StreamingResponse

from ...relay import Relay, Run
from ...types import (
    Outcome,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
)
from ..anthropic_models import model_info, page, wants_anthropic
from ..deps import KeyUser, key_user
from ..errors import OpenAIRoute, Problem, all_routes
from ..openai_answer import Chunks, completion
from ..openai_format import ChatCompletionRequest, conversation, options, parse_request
from ..served import answer_headers, first_output, stream_headers

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


class _Function(BaseModel):
    name: str
    arguments: str = Field(description="JSON text")


class _ToolCall(BaseModel):
    id: str = Field(description="Send it back as the `tool_call_id` of the tool message that answers the call")
    type: Literal["function"]
    function: _Function


class _AnswerMessage(BaseModel):
    role: Literal["assistant"]
    content: str | None = Field(description="Null when the answer only calls tools")
    refusal: None = None
    tool_calls: list[_ToolCall] | None = None
    reasoning_content: str | None = Field(None, description="The model's reasoning, when its provider shows it")


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


router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)
JSON = "application/json"
_ERRORS: dict[int | str, dict[str, Any]] = {  # their body: OpenAI's error object (see errors.document_errors)
    status: {"description": what} for status, what in (
        (400, "Bad input (`param` names it), or the provider rejected the request"),
        (401, "Missing or invalid API key"), (404, "Unknown model or agent"),
        (413, "Body too large"), (429, "Rate limited (see Retry-After)"), (502, "No provider answered"))}


@router.post(
    "/chat/completions", summary="Chat completion (OpenAI-compatible; `stream` for SSE)",
    response_model=ChatCompletion,
    openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": _request_schema()}}}},
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "The completion; with `stream`, `chat.completion.chunk` frames then `[DONE]`"},
               **_ERRORS})
async def chat_completions(request: Request) -> Response:
    # `KeyUser` called directly: FastAPI's dependency solving would add ~50 µs to every request of the
    # route the benchmark hammers
    user = await key_user(request)
    body = parse_request(await request.body())
    relay: Relay = request.app.state.relay
    system, turns = conversation(body.messages)
    run = relay.run(user, body.model, turns, options(body, system, request.scope["state"]["request_id"]))
    if body.stream:
        return await _stream(run, body)
    outcome = await run
    if outcome.error is not None:
        raise outcome.error
    resp = outcome.response
    assert resp is not None
    headers = answer_headers(resp.provider, outcome, resp.output_mode)
    return Response(completion("chatcmpl-" + run.request_id, int(time.time()), resp), headers=headers,
                    media_type=JSON)


async def _stream(run: Run, body: ChatCompletionRequest) -> Response:
    events, first = await first_output(run)  # until then a failure is an ordinary HTTP error
    assert run.link is not None
    chunks = Chunks("chatcmpl-" + run.request_id, int(time.time()), run.link.model, body.include_usage)
    return StreamingResponse(_frames(events, first, chunks, body.include_usage), media_type="text/event-stream",
                             headers=stream_headers(run))


def _frame(chunks: Chunks, event: Any) -> bytes | None:
    """The frame of one output event other than text (None: nothing to send)."""
    kind = type(event)
    if kind is ToolCallStart:
        return chunks.tool_start(event)
    if kind is ToolCallDelta:
        return chunks.tool_delta(event) if event.arguments else None
    if kind is ReasoningDelta:
        return chunks.reasoning(event)
    return None  # ToolCallEnd: OpenAI's stream has no frame for it; attempt events are not for the client


async def _frames(events: AsyncIterator[Any], first: Any, chunks: Chunks,
                  include_usage: bool) -> AsyncIterator[bytes]:
    try:
        outcome: Outcome | None = None
        if isinstance(first, Outcome):  # an empty answer
            yield chunks.first("")
            outcome = first
        else:
            event: Any = first
            while True:
                if type(event) is TextDelta:
                    yield chunks.text(event.text)
                elif type(event) is Outcome:
                    outcome = event
                    break
                else:
                    frame = _frame(chunks, event)
                    if frame is not None:
                        yield frame
                event = await anext(events, None)
                if event is None:
                    break
        assert outcome is not None  # a run always ends with one
        if outcome.error is not None:
            kind = getattr(outcome.error, "kind", None)
            yield Chunks.error(f"the stream broke after output was sent: {outcome.error}", kind and kind.value)
            return
        resp = outcome.response
        assert resp is not None
        yield chunks.finish(resp.finish_reason)
        if include_usage:
            yield chunks.usage(resp.usage)
        yield Chunks.DONE
    finally:  # done, or the client went away: either way the upstream call ends now
        await events.aclose()  # type: ignore[attr-defined]


def _card(model: str, owner: str, created: int) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": created, "owned_by": owner}


@router.get("/models", summary="Agents and models usable as `model` (OpenAI's list; Anthropic's, paged by `limit`, "
                                "`after_id` and `before_id`, when the request has `anthropic-version`)",
            response_model=ModelList, responses={401: _ERRORS[401]})
async def list_models(request: Request, user: KeyUser) -> Response:
    relay: Relay = request.app.state.relay
    created = int(time.time())
    enabled = [p.name for p in relay.provider_status() if p.enabled]
    models = [("agent:" + a, "llmrelay", agent.name) for a, agent in relay.agents.items()]
    models += [(f"{p}/{m}", p, None) for p, m in relay.targets.catalog(enabled)]
    if wants_anthropic(request.headers):
        infos = [model_info(model, created, name) for model, _, name in models]
        return Response(orjson.dumps(page(infos, request.query_params)), media_type=JSON)
    data = [_card(model, owner, created) for model, owner, _ in models]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type=JSON)


@router.get("/models/{model:path}", summary="One model (OpenAI's card; Anthropic's ModelInfo with `anthropic-version`)",
            response_model=ModelCard, responses={401: _ERRORS[401], 404: _ERRORS[404]})
async def get_model(model: str, request: Request, user: KeyUser) -> Response:
    relay: Relay = request.app.state.relay
    owner = relay.targets.owner(model)
    if owner is None:
        raise Problem(404, f"the model {model!r} does not exist", field="model", code="model_not_found")
    if wants_anthropic(request.headers):
        agent = relay.agents.get(model.removeprefix("agent:")) if owner == "llmrelay" else None
        return Response(orjson.dumps(model_info(model, int(time.time()), agent.name if agent else None)),
                        media_type=JSON)
    return Response(orjson.dumps(_card(model, owner, int(time.time()))), media_type=JSON)


unmatched = APIRouter(prefix="/v1", route_class=OpenAIRoute, include_in_schema=False)
"""The /v1 paths no route serves: a 404 (or 405) in OpenAI's shape, so SDKs raise their own errors."""


@unmatched.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
async def no_such_endpoint(path: str, request: Request) -> Response:
    here = request.scope.get("route")
    allowed = sorted({m for r in all_routes(request.app) if r is not here and isinstance(r, APIRoute)
                      and r.path_regex.match(request.url.path) for m in r.methods})
    if allowed:
        raise Problem(405, f"{request.method} is not allowed on {request.url.path} (allowed: {', '.join(allowed)})",
                      code="method_not_allowed", headers={"allow": ", ".join(allowed)})
    served = sorted({f"{m} {r.path}" for r in all_routes(request.app) if r is not here and isinstance(r, APIRoute)
                     and r.path.startswith("/v1/") for m in r.methods if m != "HEAD"}, key=lambda e: e.split()[::-1])
    raise Problem(404, f"llmrelay has no endpoint {request.method} {request.url.path}; under /v1 it serves: "
                       f"{', '.join(served)}", code="unknown_url", extra={"endpoints": served})
