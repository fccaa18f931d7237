"""The ledger: every attempt's tokens, exact cost, latency and outcome, and what they add up to."""

from __future__ import annotations

from ..config import Settings
from ..db.configs import ConfigStore
from ..db.conversations import ConversationStore
from ..db.engine import make_engine, sessions
from ..db.migrate import ensure_schema
from ..db.responses import ResponseStore
from ..db.users import principal_of
from ..types import Principal
from .recorder import Recorder


class Ledger:
    """The database side of llmrelay: engine, recorder, saved configs, conversations, stored responses."""

    def __init__(self, settings: Settings, *, url: str | None = None) -> None:
        self.url = url or settings.db_url
        self.engine = make_engine(self.url)
        self.sessions = sessions(self.engine)
        self.recorder = Recorder(self.engine, settings.home / "spool", durable=settings.ledger_durable)
        self.configs = ConfigStore(self.sessions)
        self.conversations = ConversationStore(self.sessions)
        self.responses = ResponseStore(self.sessions)
        self._started = False

    async def start(self, migrate: bool = True) -> None:
        if not self._started:
            if migrate:
                await ensure_schema(self.engine)
            await self.recorder.start()
            self._started = True

    async def principal(self, who: str) -> Principal | None:
        """The enabled user whose id or name is `who`, with their own limits."""
        async with self.sessions() as s:
            return await principal_of(s, who)

    async def aclose(self) -> None:
        """Flush every queued row, then close the database connections."""
        if self._started:
            await self.recorder.aclose()
            self._started = False
        await self.engine.dispose()


__all__ = ["Ledger", "Recorder"]
