"""`/api/ai/conversations/{id}`: a stored conversation's messages, so that a page (or any client)
can show a conversation it continues by `conversationId`.  Only its owner may read it; anyone
else gets the same 404 as for an id that does not exist."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from ...db.models import AIModelUsage, Conversation, ConversationMessage
from ...ledger.pricing import money
from ..deps import CurrentUser, RelayDep
from ..errors import Problem

router = APIRouter(prefix="/api/ai", tags=["agents"])


class Tokens(BaseModel):
    prompt: int
    completion: int
    total: int


class Attempted(BaseModel):
    provider: str
    model: str
    status: str
    errorKind: str | None
    error: str | None
    latencyMs: int


class AnswerUsage(BaseModel):
    """What the ledger recorded for the request that produced an answer: the answer badge again."""

    tokensUsed: Tokens
    costUsd: str | None = Field(description="Exact decimal string; null when a model used has no known price")
    generationTime: int = Field(description="Milliseconds: the attempts' latencies added up (backoff excluded)")
    fallbackUsed: bool
    attemptedProviders: list[Attempted]


class StoredMessage(BaseModel):
    role: str
    content: str
    provider: str | None
    model: str | None
    requestId: str | None
    createdAt: str
    usage: AnswerUsage | None = Field(description="An answer's request as the ledger has it (null for a question, "
                                                  "or while its rows are still being written)")


class ConversationOut(BaseModel):
    id: str
    agentId: str
    title: str | None
    createdAt: str
    updatedAt: str
    messages: list[StoredMessage]


async def _usage(s: AsyncSession, user_id: str, request_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per request id, its ledger rows summed up as the answer's badge shows them."""
    if not request_ids:
        return {}
    rows = (await s.execute(select(AIModelUsage).where(
        AIModelUsage.request_id.in_(request_ids), AIModelUsage.user_id == user_id)
        .order_by(AIModelUsage.request_id, AIModelUsage.attempt))).scalars()
    found: dict[str, list[AIModelUsage]] = {}
    for row in rows:
        found.setdefault(row.request_id, []).append(row)
    out = {}
    for request_id, attempts in found.items():
        costs = [a.cost_usd for a in attempts]
        out[request_id] = {
            "tokensUsed": {"prompt": sum(a.prompt_tokens for a in attempts),
                           "completion": sum(a.completion_tokens for a in attempts),
                           "total": sum(a.total_tokens for a in attempts)},
            "costUsd": None if any(c is None for c in costs) else money(sum(costs, Decimal(0))),
            "generationTime": sum(a.latency_ms for a in attempts),
            "fallbackUsed": any(a.status == "fallback" for a in attempts),
            "attemptedProviders": [{"provider": a.provider, "model": a.model,
                                    "status": "success" if a.status == "fallback" else a.status,
                                    "errorKind": a.error_kind, "error": a.error_message, "latencyMs": a.latency_ms}
                                   for a in attempts],
        }
    return out


def _iso(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")


@router.get("/conversations/{conversationId}", summary="A conversation of yours, with its messages in order",
            response_model=ConversationOut, responses={404: {"description": "No such conversation of yours"}})
async def get_conversation(conversationId: Annotated[str, Path(min_length=1, max_length=64)],
                           user: CurrentUser, relay: RelayDep) -> Response:
    async with relay.ledger.sessions() as s:  # type: ignore[union-attr]
        conv = await s.get(Conversation, conversationId)
        if conv is None or conv.user_id != user.user_id:
            raise Problem(404, f"no conversation {conversationId!r}", field="conversationId",
                          code="unknown-conversation")
        rows = (await s.execute(select(ConversationMessage).where(
            ConversationMessage.conversation_id == conversationId).order_by(ConversationMessage.id))).scalars()
        messages = [{"role": m.role, "content": m.content, "provider": m.provider, "model": m.model,
                     "requestId": m.request_id, "createdAt": _iso(m.created_at)} for m in rows]
        usage = await _usage(s, user.user_id, [m["requestId"] for m in messages
                                               if m["role"] == "assistant" and m["requestId"]])
    for m in messages:
        m["usage"] = usage.get(m["requestId"]) if m["role"] == "assistant" else None
    body = {"id": conv.id, "agentId": conv.agent_id, "title": conv.title, "createdAt": _iso(conv.created_at),
            "updatedAt": _iso(conv.updated_at), "messages": messages}
    return Response(orjson.dumps(body), media_type="application/json")
