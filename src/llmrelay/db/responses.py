"""Stored responses of the OpenAI Responses API (`responses`, `models.StoredResponse`): what `store`
keeps, so that `previous_response_id` can continue a conversation and `GET /v1/responses/{id}` can
return the body again.  A response belongs to the user who made it: anyone else is told it does not
exist.

The conversation is kept whole, as `[{"role", "parts"}]` (`content.parts_to_json`): the system turns
(the input's system and developer messages), the user and assistant turns, the response's own
answer last, and the request's `instructions` as a `system` turn marked `"instructions": true`.
OpenAI does not carry a response's instructions over to the next one (each request gives its own),
so `Conversation.of` leaves that turn out; the input's own system messages are part of the
conversation and stay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import async_sessionmaker

from ..content import Text, parts_from_json, parts_to_json
from ..types import Message
from .models import StoredResponse


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation as a request continues it: its system texts (in order) and its turns."""

    system: tuple[str, ...]
    turns: tuple[Message, ...]

    @classmethod
    def of(cls, stored: Sequence[Mapping[str, Any]]) -> Conversation:
        """The conversation a stored response holds, without its instructions."""
        system: list[str] = []
        turns: list[Message] = []
        for turn in stored:
            if turn.get("instructions"):
                continue
            parts = parts_from_json(turn["parts"])
            if turn["role"] == "system":
                system.append("".join(p.text for p in parts if type(p) is Text))
            else:
                turns.append(Message(turn["role"], parts))
        return cls(tuple(system), tuple(turns))

    def to_json(self, instructions: str | None = None) -> list[dict[str, Any]]:
        """The stored form, with `instructions` (the request's, if it gave some) first."""
        out: list[dict[str, Any]] = []
        if instructions:
            out.append({"role": "system", "instructions": True, "parts": [{"type": "text", "text": instructions}]})
        out += [{"role": "system", "parts": [{"type": "text", "text": s}]} for s in self.system]
        out += [{"role": m.role, "parts": parts_to_json(m.parts)} for m in self.turns]
        return out


class ResponseStore:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions

    async def save(self, response_id: str, user_id: str, previous_id: str | None, model: str,
                   turns: list[dict[str, Any]], body: dict[str, Any]) -> None:
        async with self._sessions() as s, s.begin():
            s.add(StoredResponse(id=response_id, user_id=user_id, previous_id=previous_id, model=model[:300],
                                 turns=turns, body=body))

    async def get(self, response_id: str, user_id: str) -> StoredResponse | None:
        """`user_id`'s response; None when there is none by that id or it is someone else's."""
        async with self._sessions() as s:
            row = await s.get(StoredResponse, response_id)
            return row if row is not None and row.user_id == user_id else None

    async def delete(self, response_id: str, user_id: str) -> bool:
        """Delete `user_id`'s response; False when there is none of theirs by that id."""
        async with self._sessions() as s, s.begin():
            result = await s.execute(delete(StoredResponse).where(StoredResponse.id == response_id,
                                                                  StoredResponse.user_id == user_id))
            return bool(result.rowcount)  # type: ignore[attr-defined]
