"""`/api/ai/conversations/{id}`: a stored conversation's messages, so that a page (or any client)
can show a conversation it continues by `conversationId`.  Each message has its text as `content`
and, when it holds more than text (images, tool calls, tool results, reasoning), its `parts` in the
JSON form the agents API takes.  Only its owner may read it; anyone else gets the same 404 as for
an id that does not exist."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from starlette.responses import Response

from ...ledger.records import request_summaries
from ..agent_codec import AnyPart
from ..deps import CurrentUser, RelayDep
from ..errors import ApiRoute, Problem

router = APIRouter(prefix="/api/ai", tags=["agents"], route_class=ApiRoute)


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
    budgetDowngraded: bool = False
    attemptedProviders: list[Attempted]


class StoredMessage(BaseModel):
    role: str
    content: str = Field(description="The message's text")
    parts: list[AnyPart] | None = Field(None, description=(
        "Present when the message holds more than text: its parts (text, image, toolCall, toolResult, "
        "reasoning) as POST /api/ai/agents takes them"))
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


def _iso(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")


@router.get("/conversations/{conversationId}", summary="A conversation of yours, with its messages in order",
            response_model=ConversationOut, responses={404: {"description": "No such conversation of yours"}})
async def get_conversation(conversationId: Annotated[str, Path(min_length=1, max_length=64)],
                           user: CurrentUser, relay: RelayDep) -> Response:
    ledger = relay.ledger
    found = await ledger.conversations.get(conversationId, user.user_id)  # type: ignore[union-attr]
    if found is None:
        raise Problem(404, f"no conversation {conversationId!r}", field="conversationId",
                      code="unknown-conversation")
    conv, rows = found
    messages = [{"role": m.role, "content": m.content, **({"parts": m.parts} if m.parts else {}),
                 "provider": m.provider, "model": m.model, "requestId": m.request_id,
                 "createdAt": _iso(m.created_at)} for m in rows]
    async with ledger.sessions() as s:  # type: ignore[union-attr]
        usage = await request_summaries(s, user.user_id, [m["requestId"] for m in messages
                                                          if m["role"] == "assistant" and m["requestId"]])
    for m in messages:
        m["usage"] = usage.get(m["requestId"]) if m["role"] == "assistant" else None
    body = {"id": conv.id, "agentId": conv.agent_id, "title": conv.title, "createdAt": _iso(conv.created_at),
            "updatedAt": _iso(conv.updated_at), "messages": messages}
    return Response(orjson.dumps(body), media_type="application/json")
