"""Users' saved model preferences (`ai_model_config`), read without a database round trip.

The whole table is held in memory (it is small: users × agents).  A write updates this
process's copy at once; other processes pick changes up within `ttl` seconds, because a read
of a stale copy starts a reload in the background and answers from the copy it has.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from ..types import ChainConfig, Link
from .models import AIModelConfig
from .types import utcnow


@dataclass(frozen=True, slots=True)
class SavedConfig:
    user_id: str
    agent_id: str
    chain: ChainConfig
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The seed plan's JSON shape."""
        c = self.chain
        return {"agentId": self.agent_id, "primaryProvider": c.primary.provider, "primaryModel": c.primary.model,
                "fallbackChain": [{"provider": x.provider, "model": x.model} for x in c.fallbacks],
                "maxTokens": c.max_tokens, "temperature": c.temperature,
                "createdAt": self.created_at.isoformat(), "updatedAt": self.updated_at.isoformat()}


def _saved(row: AIModelConfig) -> SavedConfig:
    chain = ChainConfig(Link(row.primary_provider, row.primary_model),
                        tuple(Link(x["provider"], x["model"]) for x in row.fallback_chain or []),
                        row.max_tokens, row.temperature)
    return SavedConfig(row.user_id, row.agent_id, chain, row.created_at, row.updated_at)


class ConfigStore:
    def __init__(self, sessions: async_sessionmaker, ttl: float = 5.0) -> None:
        self._sessions = sessions
        self.ttl = ttl
        self._configs: dict[tuple[str, str], SavedConfig] | None = None
        self._loaded_at = 0.0
        self._reloading: asyncio.Task | None = None

    async def reload(self) -> None:
        async with self._sessions() as s:
            rows = (await s.execute(select(AIModelConfig))).scalars().all()
        self._configs = {(r.user_id, r.agent_id): _saved(r) for r in rows}
        self._loaded_at = time.monotonic()

    async def _current(self) -> dict[tuple[str, str], SavedConfig]:
        if self._configs is None:
            await self.reload()
        elif time.monotonic() - self._loaded_at > self.ttl and (self._reloading is None or self._reloading.done()):
            self._loaded_at = time.monotonic()  # one reload at a time
            self._reloading = asyncio.create_task(self.reload())
        assert self._configs is not None
        return self._configs

    async def get(self, user_id: str | None, agent_id: str) -> ChainConfig | None:
        """The chain `user_id` saved for `agent_id`, if any (the Relay's config lookup)."""
        if user_id is None:
            return None
        saved = (await self._current()).get((user_id, agent_id))
        return saved.chain if saved else None

    async def list(self, user_id: str, agent_id: str | None = None) -> list[SavedConfig]:
        configs = await self._current()
        return sorted((c for (u, a), c in configs.items() if u == user_id and agent_id in (None, a)),
                      key=lambda c: c.agent_id)

    async def save(self, user_id: str, agent_id: str, chain: ChainConfig) -> SavedConfig:
        """Create or replace `user_id`'s config for `agent_id`."""
        now = utcnow()
        fallbacks = [{"provider": x.provider, "model": x.model} for x in chain.fallbacks]
        async with self._sessions() as s, s.begin():
            row = (await s.execute(select(AIModelConfig).where(
                AIModelConfig.user_id == user_id, AIModelConfig.agent_id == agent_id))).scalar_one_or_none()
            if row is None:
                row = AIModelConfig(user_id=user_id, agent_id=agent_id, created_at=now)
                s.add(row)
            row.primary_provider, row.primary_model = chain.primary.provider, chain.primary.model
            row.fallback_chain, row.max_tokens, row.temperature = fallbacks, chain.max_tokens, chain.temperature
            row.updated_at = now
        saved = _saved(row)
        (await self._current())[(user_id, agent_id)] = saved
        return saved

    async def delete(self, user_id: str, agent_id: str) -> bool:
        """Forget the config: the agent's own chain applies again."""
        async with self._sessions() as s, s.begin():
            result = await s.execute(delete(AIModelConfig).where(
                AIModelConfig.user_id == user_id, AIModelConfig.agent_id == agent_id))
        (await self._current()).pop((user_id, agent_id), None)
        return bool(result.rowcount)
