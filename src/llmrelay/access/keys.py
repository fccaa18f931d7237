"""Who is calling: an API key (`Authorization: Bearer …` or `x-api-key: …`) names a user.

The keys live in memory (hash -> principal), reloaded every `refresh` seconds, so a request
costs no database round trip and a revoked key stops working within `refresh` seconds in every
worker.  A key not (yet) in memory — made a moment ago in another process — is looked up once;
unknown keys are remembered as unknown until the next reload, so a stream of bad keys cannot
hammer the database.  When a key was last used is noted in memory too and written with a reload
(at most once a minute per key), never on the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.requests import HTTPConnection

from ..db.models import ApiKey, User
from ..db.users import Principal, active_keys, hash_key

log = logging.getLogger("llmrelay.auth")


def presented_key(conn: HTTPConnection) -> str | None:
    auth = conn.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = conn.headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


class KeyCache:
    def __init__(self, sessions: async_sessionmaker, refresh: float = 2.0) -> None:
        self._sessions = sessions
        self.refresh = refresh
        self._keys: dict[str, Principal] = {}
        self._by_id: dict[str, Principal] = {}  # key id -> principal (the web UI's sessions name keys by id)
        self._unknown: dict[str, float] = {}
        self._used: dict[str, float] = {}  # key id -> when it was last used (not yet written)
        self._written: dict[str, float] = {}  # key id -> when its last use was last written
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.reload()
        self._task = asyncio.create_task(self._loop(), name="llmrelay-keys")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):  # best effort: a missed "last used" costs nothing
            await self._write_last_used(force=True)

    def used(self, principal: Principal) -> None:
        self._used[principal.key_id] = time.time()

    async def _write_last_used(self, force: bool = False) -> None:
        now = time.time()
        due = {k: t for k, t in self._used.items() if force or now - self._written.get(k, 0) >= 60}
        if not due:
            return
        async with self._sessions() as s, s.begin():
            for key_id, when in due.items():
                await s.execute(update(ApiKey).where(ApiKey.id == uuid.UUID(key_id))
                                .values(last_used_at=datetime.fromtimestamp(when, UTC)))
        for key_id in due:
            self._used.pop(key_id, None)
            self._written[key_id] = now

    async def reload(self) -> None:
        async with self._sessions() as s:
            self._keys = await active_keys(s)
        self._by_id = {p.key_id: p for p in self._keys.values()}
        self._unknown.clear()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh)
            try:
                await self.reload()
                await self._write_last_used()
            except Exception as exc:  # keep the keys we have; try again next time
                log.warning("could not reload API keys: %s", exc)

    async def principal(self, key: str) -> Principal | None:
        digest = hash_key(key)
        found = self._keys.get(digest)
        if found is not None or digest in self._unknown:
            return found
        async with self._sessions() as s:
            row = (await s.execute(select(ApiKey, User).join(User, User.id == ApiKey.user_id).where(
                ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None), User.disabled.is_(False)))).first()
        if row is None:
            if len(self._unknown) > 10_000:
                self._unknown.clear()
            self._unknown[digest] = time.monotonic()
            return None
        k, u = row
        found = self._keys[digest] = Principal(u.id, u.name, u.is_admin, str(k.id), u.rpm_limit, u.tpm_limit)
        self._by_id[found.key_id] = found
        return found

    def principal_by_key_id(self, key_id: str) -> Principal | None:
        """The principal of the live key with this id, from memory only: a web session names its key
        by id, so a revoked key ends its sessions with the next reload.  (`load_key_id` first, for a
        key made a moment ago in another worker.)"""
        return self._by_id.get(key_id)

    async def load_key_id(self, key_id: str) -> None:
        """Looks a key id this worker does not know yet up once (a session signed in on another
        worker, with a key younger than the last reload); unknown ids are remembered as unknown
        until the next reload, like unknown keys."""
        if key_id in self._by_id or key_id in self._unknown:
            return
        try:
            wanted = uuid.UUID(key_id)
        except ValueError:
            return
        async with self._sessions() as s:
            row = (await s.execute(select(ApiKey, User).join(User, User.id == ApiKey.user_id).where(
                ApiKey.id == wanted, ApiKey.revoked_at.is_(None), User.disabled.is_(False)))).first()
        if row is None:
            self._unknown[key_id] = time.monotonic()
            return
        k, u = row
        found = self._keys[k.key_hash] = Principal(u.id, u.name, u.is_admin, str(k.id), u.rpm_limit, u.tpm_limit)
        self._by_id[found.key_id] = found
