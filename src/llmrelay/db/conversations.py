"""Stored conversations, so that a conversation can continue by id.  A turn is kept as its text and,
when it holds more than text (images, tool calls and results, reasoning), as its parts too."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from ..content import parts_from_json, parts_to_json
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
    parts: list | None = None
    """The parts' JSON, when the turn holds more than text."""

    @classmethod
    def of(cls, message: Message, provider: str | None = None, model: str | None = None,
           request_id: str | None = None) -> StoredTurn:
        return cls(message.role, message.text, provider, model, request_id,
                   None if message.plain else parts_to_json(message.parts))


def message_of(row: ConversationMessage) -> Message:
    return Message(row.role, parts_from_json(row.parts) if row.parts else row.content)  # type: ignore[arg-type]


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
            return conv.agent_id, [message_of(r) for r in rows]

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
                                          parts=t.parts, provider=t.provider, model=t.model,
                                          request_id=t.request_id)
                      for t in turns)
            await s.execute(update(Conversation).where(Conversation.id == conversation_id)
                            .values(updated_at=utcnow()))
