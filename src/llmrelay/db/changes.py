"""What other processes changed, as it commits: PostgreSQL's LISTEN on `llmrelay_changes`.

Migration 0011 makes every committed write to users, API keys, saved configs, budgets and prices send
`NOTIFY llmrelay_changes, '<table>'`, from whatever made it (a replica's API, the CLI, psql).  A
`ChangeFeed` holds one connection that listens, and calls what each table's watchers registered (a
revoked key stops working on every replica at once, not at the next poll).  Polling stays as it was
underneath: the feed only makes it immediate.  After the connection is lost (the database restarted) the
feed reconnects every `retry_seconds` and then calls every watcher, since notifications sent meanwhile are
lost.  SQLite has no notifications: `ChangeFeed.for_engine` gives None there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("llmrelay.db")
CHANNEL = "llmrelay_changes"
Watcher = Callable[[], Awaitable[object]]


class ChangeFeed:
    def __init__(self, dsn: str, *, retry_seconds: float = 5.0, timeout: float = 5.0) -> None:
        self._dsn = dsn
        self.retry_seconds = retry_seconds
        self.timeout = timeout
        self._watchers: dict[str, list[Watcher]] = {}
        self._task: asyncio.Task | None = None
        self._running: dict[Watcher, asyncio.Task] = {}
        self._again: set[Watcher] = set()
        self.listening = asyncio.Event()
        """Set while the feed listens (tests wait for it)."""
        self.seen = 0

    @classmethod
    def for_engine(cls, engine: AsyncEngine, **kw: Any) -> ChangeFeed | None:
        if engine.dialect.name != "postgresql":
            return None
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return cls(url, **kw)

    def watch(self, table: str, reload: Watcher) -> None:
        """Call `reload` (once at a time, off the request path) whenever `table` changed."""
        self._watchers.setdefault(table, []).append(reload)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen_loop(), name="llmrelay-changes")

    async def aclose(self) -> None:
        for task in [self._task, *self._running.values()]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = None

    async def _listen_loop(self) -> None:
        import asyncpg  # the PostgreSQL driver (only imported where PostgreSQL is used)

        first = True
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=self.timeout)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._notified)
                if not first:  # what changed while we were not listening is unknown: reload everything
                    log.warning("change notifications: listening again; reloading everything")
                    for table in self._watchers:
                        self._reload(table)
                first = False
                self.listening.set()
                while not lost.is_set():  # a lost server shows up as the termination, or a failed ping
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.retry_seconds):
                            await lost.wait()
                    if not lost.is_set():
                        async with asyncio.timeout(self.timeout):
                            await conn.execute("SELECT 1")
                raise ConnectionError("the listening connection was closed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.listening.is_set() or first:
                    log.warning("change notifications: not listening (%s); changes from other processes "
                                "are picked up by polling until the database answers", type(exc).__name__)
                first = False
                self.listening.clear()
                await asyncio.sleep(self.retry_seconds)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), self.timeout)

    def _notified(self, _conn: object, _pid: int, _channel: str, table: str) -> None:
        self.seen += 1
        self._reload(table)

    def _reload(self, table: str) -> None:
        """Start each watcher of `table`; one already running runs once more when it ends (a burst of
        changes costs two reloads, not one per change)."""
        for reload in self._watchers.get(table, ()):
            if reload in self._running:
                self._again.add(reload)
            else:
                self._running[reload] = asyncio.create_task(self._run(table, reload))

    async def _run(self, table: str, reload: Watcher) -> None:
        try:
            while True:
                self._again.discard(reload)
                try:
                    await reload()
                except Exception as exc:  # the next notification or poll tries again
                    log.warning("could not reload %s after a change: %s", table, type(exc).__name__)
                if reload not in self._again:
                    return
        finally:
            self._running.pop(reload, None)
