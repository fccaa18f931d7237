"""`/api/ai/agents`: the agents, and asking one (JSON, or SSE when streaming)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response, StreamingResponse

from ...db.conversations import StoredTurn
from ...relay import ChatResult, StreamDone, StreamFailed
from ...routing.fallback import AttemptEvent
from ...types import Message, TextDelta
from ..deps import AdmittedUser, CurrentUser, RelayDep
from ..errors import Problem, as_problem

router = APIRouter(prefix="/api/ai", tags=["agents"])
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
    status = {p.name: p for p in relay.settings.providers()}
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


async def _history(relay: Any, body: AskAgent, user_id: str) -> tuple[list[Message | dict], str | None]:
    if body.conversationId is None:
        return [t.model_dump() for t in body.conversationHistory or []], None
    found = await relay.ledger.conversations.history(body.conversationId, user_id)
    if found is None:
        raise Problem(404, f"no conversation {body.conversationId!r}", field="conversationId",
                      code="unknown-conversation")
    agent_id, turns = found
    if agent_id != body.agentId:
        raise Problem(400, f"conversation {body.conversationId!r} is with agent {agent_id!r}",
                      field="conversationId", code="conversation-agent-mismatch")
    return list(turns), body.conversationId


async def _remember(relay: Any, user_id: str, body: AskAgent, cid: str | None, result: ChatResult) -> str:
    store = relay.ledger.conversations
    if cid is None:
        cid = await store.create(user_id, body.agentId, body.message[:80])
    turns = [StoredTurn("user", body.message, request_id=result.request_id)]
    if result.response:
        turns.append(StoredTurn("assistant", result.response, result.used_provider, result.model, result.request_id))
    await store.append(cid, turns)
    return cid


def _answer(result: ChatResult, cid: str | None) -> dict[str, Any]:
    return {**result.to_dict(), "conversationId": cid}


def _tokens(result: ChatResult) -> int:
    return sum(a.usage.total_tokens for a in result.attempts if a.usage is not None)


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@router.post("/agents", summary="Ask an agent", response_model=AgentAnswer,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "The answer, or with `stream` an SSE stream of `attempt`, `delta`, "
                                             "then `done` or `error` events"},
                        404: {"description": "Unknown agent or conversation"},
                        429: {"description": "Rate limited"}, 502: {"description": "No provider answered"}})
async def ask_agent(body: AskAgent, request: Request, user: AdmittedUser, relay: RelayDep) -> Response:
    history, cid = await _history(relay, body, user.user_id)
    kwargs = dict(preferred_provider=body.preferredProvider, preferred_model=body.preferredModel,
                  user_id=user.user_id, max_tokens=body.maxTokens, temperature=body.temperature,
                  request_id=request.state.request_id)
    limits = request.app.state.limits
    wants_stream = body.stream or "text/event-stream" in request.headers.get("accept", "")
    if not wants_stream:
        result = await relay.chat(body.agentId, body.message, history, **kwargs)
        await limits.spend_tokens(user, _tokens(result))
        cid = await _remember(relay, user.user_id, body, cid, result)
        return _json(_answer(result, cid))

    events = relay.stream(body.agentId, body.message, history, **kwargs)
    first = await anext(events)  # validation errors surface here, as a normal HTTP error

    async def frames() -> AsyncIterator[bytes]:
        try:
            async for frame in _frames():
                yield frame
        finally:  # the client went away, or we are done: either way the upstream call ends now
            await events.aclose()

    async def _frames() -> AsyncIterator[bytes]:
        nonlocal cid
        event: Any = first
        while True:
            if isinstance(event, TextDelta):
                yield _sse("delta", {"text": event.text})
            elif isinstance(event, AttemptEvent):
                yield _sse("attempt", {"attempt": event.attempt.position, **event.attempt.to_dict()})
            elif isinstance(event, StreamDone | StreamFailed):
                await limits.spend_tokens(user, _tokens(event.result))
                if event.result.response or isinstance(event, StreamDone):
                    cid = await _remember(relay, user.user_id, body, cid, event.result)
                if isinstance(event, StreamDone):
                    yield _sse("done", _answer(event.result, cid))
                else:
                    p = as_problem(event.error)
                    kind = getattr(event.error, "kind", None)
                    yield _sse("error", {"error": str(event.error), "errorKind": kind.value if kind else None,
                                         "status": p.status, **_answer(event.result, cid)})
                return
            try:
                event = await anext(events)
            except StopAsyncIteration:
                return

    return StreamingResponse(frames(), media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no"})
