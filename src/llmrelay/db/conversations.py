"""Stored conversations, so that a conversation can continue by id."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from ..types import Message
from .models import Conversation, ConversationMessage
from .types import utcnow


@dataclass(frozen=True, slots=True)
class StoredTurn:
    role: str
    content: str
    provider: str | None = None
    model: str | None = None
    request_id: str | None = None


class ConversationStore:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions

    async def create(self, user_id: str, agent_id: str, title: str | None = None) -> str:
        cid = uuid.uuid4().hex
        async with self._sessions() as s, s.begin():
            s.add(Conversation(id=cid, user_id=user_id, agent_id=agent_id, title=(title or "")[:200] or None))
        return cid

    async def history(self, conversation_id: str, user_id: str) -> tuple[str, list[Message]] | None:
        """(agent id, turns) of `user_id`'s conversation; None when there is no such conversation
        or it belongs to someone else."""
        async with self._sessions() as s:
            conv = await s.get(Conversation, conversation_id)
            if conv is None or conv.user_id != user_id:
                return None
            rows = (await s.execute(select(ConversationMessage).where(
                ConversationMessage.conversation_id == conversation_id).order_by(ConversationMessage.id))).scalars()
            return conv.agent_id, [Message(r.role, r.content) for r in rows]  # type: ignore[arg-type]

    async def get(self, conversation_id: str,
                  user_id: str) -> tuple[Conversation, list[ConversationMessage]] | None:
        """`user_id`'s conversation with its messages in order; None when there is no such
        conversation or it belongs to someone else."""
        async with self._sessions() as s:
            conv = await s.get(Conversation, conversation_id)
            if conv is None or conv.user_id != user_id:
                return None
            rows = (await s.execute(select(ConversationMessage).where(
                ConversationMessage.conversation_id == conversation_id).order_by(ConversationMessage.id))).scalars()
            return conv, list(rows)

    async def append(self, conversation_id: str, turns: list[StoredTurn]) -> None:
        async with self._sessions() as s, s.begin():
            s.add_all(ConversationMessage(conversation_id=conversation_id, role=t.role, content=t.content,
                                          provider=t.provider, model=t.model, request_id=t.request_id)
                      for t in turns)
            await s.execute(update(Conversation).where(Conversation.id == conversation_id)
                            .values(updated_at=utcnow()))
