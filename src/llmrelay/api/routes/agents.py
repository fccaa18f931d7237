"""`/api/ai/agents`: the agents, and asking one (JSON, or SSE when streaming).

A codec around `Relay.run`: the body (`AskAgent`) becomes the target `agent:<agentId>`, the turns
(the stored conversation or `conversationHistory`, then `message`) and the options; the `Outcome`
becomes llmrelay's own answer shape (`AgentAnswer`), or the stream's `attempt`, `delta`, then
`done` or `error` events.  A conversation is stored (or continued) for every answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response, StreamingResponse

from ...db.conversations import StoredTurn
from ...relay import Relay
from ...routing.targets import AGENT_PREFIX
from ...types import AttemptEvent, InvalidRequest, Message, Outcome, Principal, RequestOptions, TextDelta
from ..deps import CurrentUser, RelayDep
from ..errors import ApiRoute, Problem, as_problem

router = APIRouter(prefix="/api/ai", tags=["agents"], route_class=ApiRoute)
MAX_MESSAGE = 1_000_000


class Turn(BaseModel):
    role: Literal["user", "assistant", "system"]
    content: str = Field(max_length=MAX_MESSAGE)


class AskAgent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    agentId: str = Field(min_length=1, max_length=64)
    message: str = Field(min_length=1, max_length=MAX_MESSAGE)
    conversationHistory: list[Turn] | None = Field(None, max_length=1000)
    conversationId: str | None = Field(None, min_length=1, max_length=64)
    preferredProvider: str | None = Field(None, max_length=32)
    preferredModel: str | None = Field(None, min_length=1, max_length=200)
    stream: bool = False
    maxTokens: int | None = Field(None, ge=1, le=1_000_000)
    temperature: float | None = Field(None, ge=0, le=2)


class Attempted(BaseModel):
    provider: str
    model: str
    status: Literal["success", "failed", "skipped"]
    errorKind: str | None
    error: str | None
    latencyMs: int


class TokensUsed(BaseModel):
    prompt: int
    completion: int
    total: int


class AgentAnswer(BaseModel):
    response: str
    model: str | None
    provider: str | None
    usedProvider: str | None
    fallbackUsed: bool
    attemptedProviders: list[Attempted]
    tokensUsed: TokensUsed
    costUsd: str | None = Field(description="Exact decimal USD; null when a model used has no known price")
    generationTime: int = Field(description="Milliseconds")
    requestId: str
    conversationId: str | None
    finishReason: str | None
    agentId: str


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


@router.get("/agents", summary="The agents, their chains (with which links are usable) and your saved configs")
async def list_agents(user: CurrentUser, relay: RelayDep) -> list[dict[str, Any]]:
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
                    "supportedProviders": options, "config": saved.get(agent.id)})
    return out


async def _turns(relay: Relay, body: AskAgent, user_id: str) -> tuple[list[Message], str | None, str | None]:
    """(turns, system text from `system` history turns, the conversation continued)."""
    if not body.message.strip():
        raise InvalidRequest("message must be a non-empty string", "message")
    cid = body.conversationId
    if cid is None:
        history = [Message(t.role, t.content) for t in body.conversationHistory or [] if t.role != "system"]
        system = [t.content for t in body.conversationHistory or [] if t.role == "system"]
    else:
        found = await relay.ledger.conversations.history(cid, user_id)  # type: ignore[union-attr]
        if found is None:
            raise Problem(404, f"no conversation {cid!r}", field="conversationId", code="unknown-conversation")
        agent_id, history = found
        if agent_id != body.agentId:
            raise Problem(400, f"conversation {cid!r} is with agent {agent_id!r}", field="conversationId",
                          code="conversation-agent-mismatch")
        system = []
    return [*history, Message("user", body.message)], "\n\n".join(system) or None, cid


async def _remember(relay: Relay, user_id: str, body: AskAgent, cid: str | None, outcome: Outcome) -> str:
    store = relay.ledger.conversations  # type: ignore[union-attr]
    if cid is None:
        cid = await store.create(user_id, body.agentId, body.message[:80])
    turns = [StoredTurn("user", body.message, request_id=outcome.request_id)]
    resp = outcome.response
    if resp is not None and resp.text:
        turns.append(StoredTurn("assistant", resp.text, resp.provider, resp.model, outcome.request_id))
    await store.append(cid, turns)
    return cid


def _answer(outcome: Outcome, cid: str | None) -> dict[str, Any]:
    return {**outcome.to_dict(), "conversationId": cid}


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@router.post("/agents", summary="Ask an agent", response_model=AgentAnswer,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "The answer, or with `stream` an SSE stream of `attempt`, `delta`, "
                                             "then `done` or `error` events"},
                        404: {"description": "Unknown agent or conversation"},
                        429: {"description": "Rate limited"}, 502: {"description": "No provider answered"}})
async def ask_agent(body: AskAgent, request: Request, user: CurrentUser, relay: RelayDep) -> Response:
    turns, system, cid = await _turns(relay, body, user.user_id)
    run = relay.run(user, AGENT_PREFIX + body.agentId, turns, RequestOptions(
        system=system, max_tokens=body.maxTokens, temperature=body.temperature,
        prefer_provider=body.preferredProvider, prefer_model=body.preferredModel,
        request_id=request.state.request_id, target_field="agentId"))
    if not (body.stream or "text/event-stream" in request.headers.get("accept", "")):
        outcome = await run
        if outcome.error is not None:
            raise outcome.error
        return _json(_answer(outcome, await _remember(relay, user.user_id, body, cid, outcome)))
    events = aiter(run)
    first = await anext(events)  # a request that cannot be served raises here, as an ordinary HTTP error
    return StreamingResponse(_frames(relay, user, body, cid, first, events), media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no"})


async def _frames(relay: Relay, user: Principal, body: AskAgent, cid: str | None, first: Any,
                  events: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    try:
        event = first
        while True:
            if isinstance(event, TextDelta):
                yield _sse("delta", {"text": event.text})
            elif isinstance(event, AttemptEvent):
                yield _sse("attempt", {"attempt": event.attempt.position, **event.attempt.to_dict()})
            elif isinstance(event, Outcome):
                if event.text or event.error is None:
                    cid = await _remember(relay, user.user_id, body, cid, event)
                if event.error is None:
                    yield _sse("done", _answer(event, cid))
                else:
                    p = as_problem(event.error)
                    kind = getattr(event.error, "kind", None)
                    yield _sse("error", {"error": str(event.error), "errorKind": kind.value if kind else None,
                                         "status": p.status, **_answer(event, cid)})
                return
            event = await anext(events)
    finally:  # the client went away, or we are done: either way the upstream call ends now
        await events.aclose()  # type: ignore[attr-defined]
