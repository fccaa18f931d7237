"""`/api/ai/conversations/{id}`: a stored conversation's messages, so that a page (or any client)
can show a conversation it continues by `conversationId`.  Only its owner may read it; anyone
else gets the same 404 as for an id that does not exist."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path
from pydantic import BaseModel
from sqlalchemy import select
from starlette.responses import Response

from ...db.models import Conversation, ConversationMessage
from ..deps import CurrentUser, RelayDep
from ..errors import Problem

router = APIRouter(prefix="/api/ai", tags=["agents"])


class StoredMessage(BaseModel):
    role: str
    content: str
    provider: str | None
    model: str | None
    requestId: str | None
    createdAt: str


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
    async with relay.ledger.sessions() as s:  # type: ignore[union-attr]
        conv = await s.get(Conversation, conversationId)
        if conv is None or conv.user_id != user.user_id:
            raise Problem(404, f"no conversation {conversationId!r}", field="conversationId",
                          code="unknown-conversation")
        rows = (await s.execute(select(ConversationMessage).where(
            ConversationMessage.conversation_id == conversationId).order_by(ConversationMessage.id))).scalars()
        messages = [{"role": m.role, "content": m.content, "provider": m.provider, "model": m.model,
                     "requestId": m.request_id, "createdAt": _iso(m.created_at)} for m in rows]
    body = {"id": conv.id, "agentId": conv.agent_id, "title": conv.title, "createdAt": _iso(conv.created_at),
            "updatedAt": _iso(conv.updated_at), "messages": messages}
    return Response(orjson.dumps(body), media_type="application/json")
