"""`/v1/responses`: OpenAI's Responses API, so that the openai SDK's `client.responses`, openai-agents'
default model and LangChain's `ChatOpenAI(use_responses_api=True)` work against llmrelay unchanged.

`POST /v1/responses` takes `model` as on /v1/chat/completions (`agent:<agentId>`, `<provider>/<model>`, a
bare model name; OpenRouter's `models` adds fallback links), `input` (a string, or message, function_call,
function_call_output and reasoning items: `api.responses_items`), `instructions` and the parameters
`api.responses_format` reads; everything it cannot honour is a 400 naming the parameter (hosted tools by
their type).  The route is a codec around `Relay.run`: parse, run, render (`api.responses_answer`).
Headers as on /v1/chat/completions: `x-llmrelay-provider`, `x-llmrelay-fallback`, and (not on streams)
`x-llmrelay-cost-usd`, `x-llmrelay-structured-output`.  The ledger rows are ordinary chat rows under the
request's id (`x-request-id`; the response's id is `resp_<request id>`).

`store` (default true, as OpenAI's) keeps the response for its owner (`db.responses`): the whole
conversation as parts and the response object.  `previous_response_id` continues a stored response: its
turns (without its instructions: each request gives its own), then the new input; an unknown id, or
another user's, is a 404 `previous_response_not_found`.  Only answered responses are stored (a stream
that broke after output is not).  `GET /v1/responses/{id}` returns a stored response object, `DELETE`
deletes it; both answer 404 for anyone but its owner.

Streams hold their headers until the first output (text, a function call, reasoning), so a fallback
before it stays invisible and `x-llmrelay-provider` is right, then send the typed events
`api.responses_answer` describes.  A failure before any output is an ordinary HTTP error; after it, the
stream ends with `response.failed`.  A client that goes away closes the upstream call.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response, StreamingResponse

from ...db.responses import Conversation
from ...providers.openai_wire import WireError
from ...relay import Relay, Run
from ...types import (
    LLMRelayError,
    Outcome,
    Principal,
    Text,
)
from ..deps import KeyUser, key_user
from ..errors import OpenAIRoute, Problem, as_problem
from ..responses_answer import Events, echo, finished
from ..responses_format import MAX_TEXT, ResponsesRequest, options, parse_request, wire_problem
from ..responses_items import check_tool_outputs, read_input
from ..served import answer_headers, first_output, from_store, stream_headers, to_store

# -- the OpenAPI document only (the routes render their bodies with orjson, not through these) --------


class _OutputText(BaseModel):
    type: Literal["output_text"]
    text: str
    annotations: list[Any]


class _Message(BaseModel):
    id: str = Field(description="`msg_…`")
    type: Literal["message"]
    role: Literal["assistant"]
    status: Literal["in_progress", "completed", "incomplete"]
    content: list[_OutputText]


class _FunctionCall(BaseModel):
    id: str = Field(description="`fc_…`")
    type: Literal["function_call"]
    call_id: str = Field(description="Send it back as the `call_id` of the function_call_output that answers it")
    name: str
    arguments: str = Field(description="JSON text")
    status: Literal["in_progress", "completed", "incomplete"]


class _Summary(BaseModel):
    type: Literal["summary_text"]
    text: str


class _Reasoning(BaseModel):
    id: str = Field(description="`rs_…`")
    type: Literal["reasoning"]
    summary: list[_Summary] = Field(description="The reasoning the provider showed")
    encrypted_content: str | None = Field(None, description="Who wrote it: send the item back as it is")


class _InputDetails(BaseModel):
    cached_tokens: int
    cache_write_tokens: int


class _OutputDetails(BaseModel):
    reasoning_tokens: int


class _Usage(BaseModel):
    input_tokens: int
    input_tokens_details: _InputDetails
    output_tokens: int
    output_tokens_details: _OutputDetails
    total_tokens: int


class ResponseObject(BaseModel):
    id: str = Field(description="`resp_<x-request-id>`")
    object: Literal["response"]
    created_at: int
    status: Literal["completed", "incomplete", "failed", "in_progress"]
    completed_at: int | None
    error: dict[str, Any] | None
    incomplete_details: dict[str, Any] | None
    model: str
    output: list[_Reasoning | _Message | _FunctionCall]
    instructions: str | None
    metadata: dict[str, str]
    parallel_tool_calls: bool
    temperature: float | None
    top_p: float | None
    tool_choice: Any
    tools: list[dict[str, Any]]
    text: dict[str, Any]
    max_output_tokens: int | None
    previous_response_id: str | None
    reasoning: dict[str, Any]
    store: bool
    truncation: Literal["disabled"]
    background: bool
    user: str | None
    safety_identifier: str | None
    usage: _Usage | None


class DeletedResponse(BaseModel):
    id: str
    object: Literal["response"]
    deleted: Literal[True]


def _request_schema() -> dict[str, Any]:
    schema = ResponsesRequest.model_json_schema()
    schema.pop("$defs", None)
    return schema


router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)
JSON = "application/json"
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": what} for status, what in (
        (400, "Bad input (`param` names it), or the provider rejected the request"),
        (401, "Missing or invalid API key"),
        (404, "Unknown model or agent, or no such stored response of yours (`previous_response_not_found`)"),
        (413, "Body too large"), (429, "Rate limited (see Retry-After)"), (502, "No provider answered"))}
_FIELDS = {"response_format": "text.format", "reasoning_effort": "reasoning.effort", "images": "input",
           "image_url": "input", "messages": "input"}
"""This API's names for the parameters llmrelay's errors name otherwise."""


def _problem(error: Exception) -> Problem:
    """The error as this API names things: `reasoning.effort`, not chat completions' `reasoning_effort`, in
    its `param` and in its message (a link that refused the parameter named it the chat way)."""
    p = as_problem(error)
    if p.field is not None:
        p.field = _FIELDS.get(p.field, p.field)
    for chat, here in _FIELDS.items():
        p.detail = p.detail.replace(f"'{chat}'", f"'{here}'")
    return p


class _Request:
    """One POST /v1/responses on its way: who asked, what to echo, what to store."""

    def __init__(self, relay: Relay, user: Principal, body: ResponsesRequest, response_id: str,
                 conversation: Conversation, echoed: dict[str, Any]) -> None:
        self.relay, self.user, self.body, self.response_id = relay, user, body, response_id
        self.conversation, self.echoed = conversation, echoed
        self.created = int(time.time())

    async def keep(self, outcome: Outcome, obj: dict[str, Any]) -> None:
        """Store the answered response (unless `store` is false): its conversation and its object."""
        resp = outcome.response
        if self.body.store is False or outcome.error is not None or resp is None:
            return
        turns = self.conversation.turns
        if resp.text or resp.tool_calls:
            turns = (*turns, resp.message)
        stored = Conversation(self.conversation.system, turns).to_json(self.body.instructions)
        saved, _ = await to_store(self.relay.ledger.responses.save(  # type: ignore[union-attr]
            self.response_id, self.user.user_id, self.body.previous_response_id, self.body.model, stored, obj),
            f"response {self.response_id}")
        if not saved:  # before it is sent: the answer, or a stream's last event
            obj["store"] = False


async def _conversation(relay: Relay, user: Principal, body: ResponsesRequest) -> Conversation:
    """The stored conversation `previous_response_id` continues, then the request's input."""
    history = Conversation((), ())
    try:
        system, turns = read_input(body.input)
    except WireError as exc:
        raise wire_problem(exc) from None
    if body.previous_response_id is not None:
        previous = body.previous_response_id
        stored = await from_store(relay.ledger.responses.get(previous, user.user_id), lambda error: Problem(  # type: ignore[union-attr]
            503, f"Previous response {previous!r} cannot be read now: the database does not answer ({error}); "
                 f"try again, or send the whole input",
            field="previous_response_id", code="server_error", headers={"retry-after": "5"}))
        if stored is None:
            raise Problem(404, f"Previous response with id {body.previous_response_id!r} not found.",
                          field="previous_response_id", code="previous_response_not_found")
        history = Conversation.of(stored.turns)
    turns = [*history.turns, *turns]
    try:
        check_tool_outputs(turns)
    except WireError as exc:  # said as OpenAI says it
        raise Problem(400, exc.detail, field=exc.param, code="invalid_value") from None
    if not turns:
        raise Problem(400, "input needs at least one user or assistant message", field="input", code="invalid_value")
    if any(type(p) is Text and len(p.text) > MAX_TEXT for m in turns for p in m.parts):
        raise Problem(400, f"a message is over {MAX_TEXT} characters", field="input", code="invalid_value")
    return Conversation((*history.system, *system), tuple(turns))


@router.post(
    "/responses", summary="Create a response (OpenAI's Responses API; `stream` for SSE)",
    response_model=ResponseObject,
    openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": _request_schema()}}}},
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "The response; with `stream`, its typed events (`response.created` … "
                                    "`response.completed`)"},
               **_ERRORS})
async def create_response(request: Request) -> Response:
    user = await key_user(request)
    body = parse_request(await request.body())
    relay: Relay = request.app.state.relay
    request_id = request.scope["state"]["request_id"]
    conversation = await _conversation(relay, user, body)
    opts = options(body, [body.instructions or "", *conversation.system], request_id)
    this = _Request(relay, user, body, "resp_" + request_id, conversation, echo(body, opts))
    run = relay.run(user, body.model, conversation.turns, opts)
    if body.stream:
        return await _stream(run, this)
    try:
        outcome = await run
    except LLMRelayError as exc:
        raise _problem(exc) from None
    if outcome.error is not None:
        raise _problem(outcome.error)
    resp = outcome.response
    assert resp is not None
    obj = finished(this.response_id, this.created, resp, this.echoed)
    await this.keep(outcome, obj)
    return Response(orjson.dumps(obj), headers=answer_headers(resp.provider, outcome, resp.output_mode),
                    media_type=JSON)


async def _stream(run: Run, this: _Request) -> Response:
    try:  # until the first output a failure is an ordinary HTTP error
        events, first = await first_output(run)
    except LLMRelayError as exc:
        raise _problem(exc) from None
    link = run.link
    assert link is not None
    stream = Events(this.response_id, this.created, link.model, link.provider, this.echoed)
    return StreamingResponse(_frames(events, first, stream, this), media_type="text/event-stream",
                             headers=stream_headers(run))


async def _frames(events: AsyncIterator[Any], first: Any, stream: Events, this: _Request) -> AsyncIterator[bytes]:
    try:
        yield b"".join(stream.start())
        event: Any = first
        while type(event) is not Outcome:
            frames = stream.on(event)
            if frames:
                yield b"".join(frames)
            event = await anext(events, None)
            assert event is not None, "a run ends with its Outcome"
        frames, obj = stream.end(event)
        await this.keep(event, obj)
        yield b"".join([*frames, stream.final(obj)])
    finally:  # done, or the client went away: either way the upstream call ends now
        await events.aclose()  # type: ignore[attr-defined]


@router.get("/responses/{response_id}", summary="A stored response of yours (OpenAI's Responses API)",
            response_model=ResponseObject,
            responses={400: {"description": "`stream=true` (a stored response is returned whole)"}, 401: _ERRORS[401],
                       404: {"description": "No such response of yours"}})
async def get_response(response_id: str, request: Request, user: KeyUser) -> Response:
    if request.query_params.get("stream", "false") != "false":
        raise Problem(400, "'stream' is not supported: a stored response is returned whole", field="stream",
                      code="unsupported_parameter")
    stored = await request.app.state.relay.ledger.responses.get(response_id, user.user_id)
    if stored is None:
        raise Problem(404, f"No response found with id {response_id!r}.", field="response_id", code="not_found")
    return Response(orjson.dumps(stored.body), media_type=JSON)


@router.delete("/responses/{response_id}", summary="Delete a stored response of yours", response_model=DeletedResponse,
               responses={401: _ERRORS[401], 404: {"description": "No such response of yours"}})
async def delete_response(response_id: str, request: Request, user: KeyUser) -> Response:
    if not await request.app.state.relay.ledger.responses.delete(response_id, user.user_id):
        raise Problem(404, f"No response found with id {response_id!r}.", field="response_id", code="not_found")
    return Response(orjson.dumps({"id": response_id, "object": "response", "deleted": True}), media_type=JSON)
