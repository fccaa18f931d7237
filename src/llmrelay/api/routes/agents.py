"""`/api/ai/agents`: the agents, and asking one (JSON, or SSE when streaming).

A codec around `Relay.run`: the body (`AskAgent`, see `api.agent_codec`) becomes the target
`agent:<agentId>`, the turns (the stored conversation or `conversationHistory`, then `message`: a
string, or parts such as images and the results of the tools the previous answer called) and the
options (tools, tool choice, response format, sampling); the `Outcome` becomes llmrelay's own answer
shape (`AgentAnswer`, with `toolCalls` when the model called tools), or the stream's `attempt`,
`delta`, `toolCall`, `toolCallDelta`, `reasoning`, then `done` or `error` events.  A conversation is
stored (or continued) for every answer, each turn with its parts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from ...agents import Agent
from ...db.conversations import StoredTurn
from ...relay import Relay
from ...routing.targets import AGENT_PREFIX
from ...types import (
    AttemptEvent,
    Message,
    Outcome,
    Principal,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
)
from ..agent_answer import AgentAnswer, AgentOut
from ..agent_codec import AskAgent, check_tool_turns
from ..deps import CurrentUser, RelayDep
from ..errors import ApiRoute, Problem, as_problem
from ..served import from_store, to_store

router = APIRouter(prefix="/api/ai", tags=["agents"], route_class=ApiRoute)
TITLE_CHARS = 80
_FIELDS = {"tools": "tools", "tool_choice": "toolChoice", "parallel_tool_calls": "parallelToolCalls",
           "images": "message", "image_url": "message", "response_format": "responseFormat", "top_p": "topP",
           "top_k": "topK", "seed": "seed", "presence_penalty": "presencePenalty",
           "frequency_penalty": "frequencyPenalty", "reasoning_effort": "reasoningEffort"}
"""The body field that asks for each `ChatRequest.needs` name, for the error when no link can take it."""


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


@router.get("/agents", summary="The agents, their chains (with which links are usable), tools, output formats "
                               "and your saved configs", response_model=list[AgentOut])
async def list_agents(user: CurrentUser, relay: RelayDep) -> Response:
    saved = {c.agent_id: c.to_dict() for c in await relay.ledger.configs.list(user.user_id)}  # type: ignore[union-attr]
    status = {p.name: p for p in relay.provider_status()}
    out = []
    for agent in relay.agents.values():
        options = []
        for o in agent.options:
            ps = status.get(o.provider)
            options.append({"provider": o.provider, "model": o.model, "priority": o.priority,
                            "maxRetries": o.max_retries, "enabled": bool(ps and ps.enabled),
                            **({"disabledReason": ps.disabled_reason} if ps and not ps.enabled else {})})
        out.append({"id": agent.id, "name": agent.name, "description": agent.description,
                    "costTier": agent.cost_tier, "defaultProvider": agent.primary.provider,
                    "supportedProviders": options, "config": saved.get(agent.id), **_agent_format(agent)})
    return _json(out)


def _agent_format(agent: Agent) -> dict[str, Any]:
    out = agent.output_format
    return {"tools": [t.model_dump() for t in agent.tools],
            "outputFormat": None if out is None else out.model_dump(by_alias=True)}


async def _turns(relay: Relay, body: AskAgent, user_id: str) -> tuple[list[Message], str | None, str | None]:
    """(turns, system text from `system` history turns, the conversation continued)."""
    message = body.user_message()
    agent = relay.agents.get(body.agentId)
    if agent is not None:
        body.check_tool_choice(agent.tools)
    cid = body.conversationId
    if cid is None:
        given = body.conversationHistory or []
        kept = [(i, t) for i, t in enumerate(given) if t.role != "system"]
        history = [t.message() for _, t in kept]
        system = [t.system_text() for t in given if t.role == "system"]
        fields = [f"conversationHistory.{i}.content" for i, _ in kept]
    else:
        found = await from_store(relay.ledger.conversations.history(cid, user_id), lambda error: Problem(  # type: ignore[union-attr]
            503, f"conversation {cid!r} cannot be read now: the database does not answer ({error}); try again, "
                 f"or send the turns in conversationHistory",
            field="conversationId", code="conversation-unavailable", headers={"retry-after": "5"}))
        if found is None:
            raise Problem(404, f"no conversation {cid!r}", field="conversationId", code="unknown-conversation")
        agent_id, history = found
        if agent_id != body.agentId:
            raise Problem(400, f"conversation {cid!r} is with agent {agent_id!r}", field="conversationId",
                          code="conversation-agent-mismatch")
        system, fields = [], ["conversationId"] * len(history)
    turns = [*history, message]
    check_tool_turns(turns, lambda i: fields[i] if i < len(fields) else "message")
    return turns, "\n\n".join(system) or None, cid


def _title(message: Message) -> str:
    text = " ".join(message.text.split())
    if text:
        return text[:TITLE_CHARS]
    kinds = sorted({type(p).__name__ for p in message.parts})
    return "[" + ", ".join(kinds) + "]"


async def _remember(relay: Relay, user_id: str, body: AskAgent, cid: str | None, outcome: Outcome,
                    message: Message) -> str:
    """Store the exchange: the user's turn with its parts, and the answer (its text, tool calls and
    reasoning; only its text when a stream broke, as partial tool calls cannot be sent back)."""
    store = relay.ledger.conversations  # type: ignore[union-attr]
    if cid is None:
        cid = await store.create(user_id, body.agentId, _title(message))
    turns = [StoredTurn.of(message, request_id=outcome.request_id)]
    resp = outcome.response
    if resp is not None:
        if outcome.error is None and (resp.text or resp.tool_calls):
            turns.append(StoredTurn.of(resp.message, resp.provider, resp.model, outcome.request_id))
        elif resp.text:
            turns.append(StoredTurn("assistant", resp.text, resp.provider, resp.model, outcome.request_id))
    await store.append(cid, turns)
    return cid


async def _keep(relay: Relay, user_id: str, body: AskAgent, cid: str | None, outcome: Outcome,
                message: Message) -> tuple[str | None, bool]:
    """`_remember`, but an answer is never lost for its conversation: while the database is away the answer
    goes out with `conversationSaved: false` (its ledger rows are spooled as usual)."""
    saved, kept = await to_store(_remember(relay, user_id, body, cid, outcome, message),
                                 f"the conversation of request {outcome.request_id}")
    return (kept, True) if saved else (cid, False)


def _answer(outcome: Outcome, cid: str | None, saved: bool = True) -> dict[str, Any]:
    return {**outcome.to_dict(), "conversationId": cid, "conversationSaved": saved}


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@router.post("/agents", summary="Ask an agent", response_model=AgentAnswer,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "The answer, or with `stream` an SSE stream: `attempt` (a link tried "
                                             "or skipped), `delta` {text}, `toolCall` {index, id, name}, "
                                             "`toolCallDelta` {index, arguments}, `reasoning` {text}, then `done` "
                                             "(the answer) or `error`"},
                        404: {"description": "Unknown agent or conversation"},
                        429: {"description": "Rate limited"}, 502: {"description": "No provider answered"}})
async def ask_agent(body: AskAgent, request: Request, user: CurrentUser, relay: RelayDep) -> Response:
    turns, system, cid = await _turns(relay, body, user.user_id)
    message = turns[-1]
    run = relay.run(user, AGENT_PREFIX + body.agentId, turns, body.options(system, request.state.request_id))
    if not (body.stream or "text/event-stream" in request.headers.get("accept", "")):
        outcome = await run
        if outcome.error is not None:
            raise _problem(outcome.error)
        return _json(_answer(outcome, *await _keep(relay, user.user_id, body, cid, outcome, message)))
    events = aiter(run)
    first = await anext(events)  # a request that cannot be served raises here, as an ordinary HTTP error
    return StreamingResponse(_frames(relay, user, body, cid, message, first, events), media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no"})


def _problem(error: Exception) -> Problem:
    """The error as the HTTP problem it means, naming this API's field for a setting no link can take."""
    p = as_problem(error)
    if p.code == "unsupported-parameter" and p.field is not None:
        p.field = _FIELDS.get(p.field, p.field)
    return p


def _frame(event: Any) -> bytes | None:
    """The SSE frame of a stream event (None: it needs none)."""
    kind = type(event)
    if kind is TextDelta:
        return _sse("delta", {"text": event.text})
    if kind is ToolCallStart:
        return _sse("toolCall", {"index": event.index, "id": event.id, "name": event.name})
    if kind is ToolCallDelta:
        return _sse("toolCallDelta", {"index": event.index, "arguments": event.arguments})
    if kind is ReasoningDelta:
        return _sse("reasoning", {"text": event.text}) if event.text else None
    if kind is AttemptEvent:
        return _sse("attempt", {"attempt": event.attempt.position, **event.attempt.to_dict()})
    return None  # the end of a tool call, usage: the `done` answer carries them


async def _frames(relay: Relay, user: Principal, body: AskAgent, cid: str | None, message: Message, first: Any,
                  events: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    try:
        event = first
        while True:
            if isinstance(event, Outcome):
                resp = event.response
                saved = True
                if event.error is None or (resp is not None and resp.text):
                    cid, saved = await _keep(relay, user.user_id, body, cid, event, message)
                if event.error is None:
                    yield _sse("done", _answer(event, cid, saved))
                else:
                    p = _problem(event.error)
                    kind = getattr(event.error, "kind", None)
                    yield _sse("error", {"error": str(event.error), "errorKind": kind.value if kind else None,
                                         "status": p.status, **_answer(event, cid, saved)})
                return
            frame = _frame(event)
            if frame is not None:
                yield frame
            event = await anext(events)
    finally:  # the client went away, or we are done: either way the upstream call ends now
        await events.aclose()  # type: ignore[attr-defined]

