"""`/v1/messages`: the Anthropic-compatible API, so any Anthropic SDK (or Claude client) can point its
base URL here and keep its code, while the answer comes from whichever link of the chain serves: a
Claude client can fall back to GPT-4o or Gemini.

`POST /v1/messages` takes the key as `x-api-key` or `Authorization: Bearer` (an llmrelay key), accepts
the `anthropic-version` and `anthropic-beta` headers (the features a beta enables arrive as body fields,
each relayed or refused like any other), and `model` as on /v1/chat/completions: `agent:<agentId>`,
`<provider>/<model>` or a bare model name.  The route is a codec around `Relay.run`, as every ingress is:
parse (`api.anthropic_format`, which says what is relayed and what is refused), run, render
(`api.anthropic_answer`).  Every error, whatever raised it, is Anthropic's `{"type": "error", "error":
{type, message}, "request_id"}` with its error types (the router's `AnthropicRoute`): 400
`invalid_request_error` (bad input, an unknown field, no link able to take the request, a provider
rejecting it), 401 `authentication_error`, 404 `not_found_error` (unknown model or agent), 413
`request_too_large`, 429 `rate_limit_error` (with Retry-After), 502 `api_error` (no link answered).

The answer carries `request-id` (`req_<llmrelay's request id>`; the message id is `msg_<the same>`),
`x-llmrelay-provider`, `x-llmrelay-fallback` (true/false), `x-llmrelay-cost-usd` when every attempt
could be priced and, for a structured answer, `x-llmrelay-structured-output` (`native` or `tool`).
Streams hold their headers until the first output (text, a tool call, thinking) is ready, so a fallback
before it stays invisible and `x-llmrelay-provider` is right; a failure after it ends the stream with
Anthropic's `error` event.  A client that goes away closes the upstream call.

`POST /v1/messages/count_tokens` (the body of /v1/messages without `max_tokens` and the generation
settings, as Anthropic's count endpoint takes it) answers `{"input_tokens": N}`, counted by the provider
of the link that would serve where it can count (Anthropic, Gemini), else estimated (`api.token_count` states
the formula): `x-llmrelay-token-count: provider|estimate` says which, and `x-llmrelay-provider` names the
provider of that link (absent when no link of the chain could take the request).

Ledger rows: one per attempt of /v1/messages, kind `chat`, `agent_id` the agent's for `agent:` models
and `direct` for any other; counting writes none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response, StreamingResponse

from ...relay import Relay, Run
from ...types import (
    LLMRelayError,
    Outcome,
)
from ..anthropic_answer import Frames, message
from ..anthropic_format import (
    CountTokensRequest,
    MessagesRequest,
    conversation,
    options,
    parse_count,
    parse_messages,
)
from ..deps import key_user
from ..errors import AnthropicRoute, Problem, as_problem
from ..served import answer_headers, first_output, stream_headers
from ..token_count import count_input_tokens

# -- the OpenAPI document only (the routes render their bodies with orjson, not through these) --------


class _Usage(BaseModel):
    input_tokens: int = Field(description="Excluding the input read from or written to a prompt cache")
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int


class _Block(BaseModel):
    type: Literal["text", "tool_use", "thinking", "redacted_thinking"]
    text: str | None = None
    id: str | None = Field(None, description="tool_use: send it back as the `tool_use_id` of its tool_result")
    name: str | None = None
    input: dict[str, Any] | None = None
    thinking: str | None = None
    signature: str | None = Field(None, description="thinking: Anthropic's own, else empty")
    data: str | None = None


class MessageAnswer(BaseModel):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[_Block]
    stop_reason: Literal["end_turn", "max_tokens", "tool_use", "refusal", "stop_sequence"]
    stop_sequence: str | None
    usage: _Usage


class TokenCount(BaseModel):
    input_tokens: int


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    """A request model's JSON schema with its definitions inlined (for `openapi_extra`)."""
    schema = model.model_json_schema()
    schema.pop("$defs", None)
    return schema


router = APIRouter(prefix="/v1", tags=["anthropic"], route_class=AnthropicRoute)
JSON = "application/json"
_ERRORS: dict[int | str, dict[str, Any]] = {  # their body: Anthropic's error object (see errors.document_errors)
    status: {"description": what} for status, what in (
        (400, "Bad input (the message names the field), or no link can take the request"),
        (401, "Missing or invalid API key"), (404, "Unknown model or agent"), (413, "Body too large"),
        (429, "Rate limited (see Retry-After)"), (502, "No provider answered"))}


def _identified(exc: Problem | LLMRelayError, request_id: str) -> Problem:
    """The error with the request id Anthropic's errors carry (header and body)."""
    problem = as_problem(exc)
    problem.headers.setdefault("request-id", request_id)
    problem.extra.setdefault("request_id", request_id)
    return problem


@router.post(
    "/messages", summary="Create a message (Anthropic-compatible; `stream` for SSE)", response_model=MessageAnswer,
    openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": _schema(MessagesRequest)}}}},
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "The message; with `stream`, Anthropic's events from `message_start` to "
                                    "`message_stop`"}, **_ERRORS})
async def create_message(request: Request) -> Response:
    rid = "req_" + request.scope["state"]["request_id"]
    try:
        user = await key_user(request)
        body = parse_messages(await request.body())
        system, turns = conversation(body)
        relay: Relay = request.app.state.relay
        run = relay.run(user, body.model, turns, options(body, system, request.scope["state"]["request_id"]))
        if body.stream:
            return await _stream(run, rid)
        outcome = await run
        if outcome.error is not None:
            raise outcome.error
    except (Problem, LLMRelayError) as exc:
        raise _identified(exc, rid) from None
    resp = outcome.response
    assert resp is not None
    headers = {"request-id": rid, **answer_headers(resp.provider, outcome, resp.output_mode)}
    return Response(message("msg_" + run.request_id, resp), headers=headers, media_type=JSON)


async def _stream(run: Run, rid: str) -> Response:
    events, first = await first_output(run)  # until then a failure is an ordinary HTTP error
    assert run.link is not None
    frames = Frames("msg_" + run.request_id, run.link.model)
    return StreamingResponse(_events(events, first, frames, rid), media_type="text/event-stream",
                             headers={**stream_headers(run), "request-id": rid})


async def _events(events: AsyncIterator[Any], first: Any, frames: Frames, rid: str) -> AsyncIterator[bytes]:
    try:
        yield frames.start()
        event: Any = first
        while type(event) is not Outcome:
            out = frames.event(event)
            if out:
                yield out
            event = await anext(events)
        outcome: Outcome = event
        if outcome.error is not None:
            kind = getattr(outcome.error, "kind", None)
            yield Frames.error(kind, f"the stream broke after output was sent: {outcome.error}", rid)
            return
        assert outcome.response is not None
        yield frames.finish(outcome.response)
    finally:  # done, or the client went away: either way the upstream call ends now
        await events.aclose()  # type: ignore[attr-defined]


@router.post(
    "/messages/count_tokens", summary="Count a message's input tokens (Anthropic-compatible)",
    response_model=TokenCount,
    openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": _schema(CountTokensRequest)}}}},
    responses={200: {"headers": {"x-llmrelay-token-count": {
        "description": "`provider` (the serving provider counted) or `estimate`", "schema": {"type": "string"}}}},
        **_ERRORS})
async def count_tokens(request: Request) -> Response:
    rid = "req_" + request.scope["state"]["request_id"]
    try:
        user = await key_user(request)
        body = parse_count(await request.body())
        system, turns = conversation(body)
        relay: Relay = request.app.state.relay
        count = await count_input_tokens(relay, user, body.model, turns,
                                         options(body, system, request.scope["state"]["request_id"]))
    except (Problem, LLMRelayError) as exc:
        raise _identified(exc, rid) from None
    headers = {"request-id": rid, "x-llmrelay-token-count": count.source}
    if count.link is not None:
        headers["x-llmrelay-provider"] = count.link.provider
    return Response(orjson.dumps({"input_tokens": count.input_tokens}), headers=headers, media_type=JSON)
