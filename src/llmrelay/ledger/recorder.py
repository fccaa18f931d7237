"""The one place that writes the ledger: one row per attempt, off the hot path, never lost.

`record(ctx, attempt)` only appends to an in-memory queue (a few hundred nanoseconds: it is
the fallback executor's attempt observer, called on the request path).  A background task
turns queued attempts into rows (cost included) and inserts them in batches.

When the database cannot take a batch, the rows go to an append-only spool file in
`LLMRELAY_HOME/spool/` (fsync'ed), and further batches follow them there without trying the
database more than once every `retry_interval`.  Once the database answers again the spool
files are replayed.  Every row carries its own UUID and every insert is ON CONFLICT DO NOTHING,
so a batch that reached the database but whose acknowledgement did not, replays without
duplicates.  `aclose()` (graceful shutdown) writes out everything queued.

Spool files: each process writes `<pid>-<n>.part`; when it switches back to the database it
renames the file to `.jsonl`, and any process may then claim it (an atomic rename to
`.replay-<pid>`), replay it and delete it.  The `.part` file of a process that died is claimed
the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from ..db.engine import sessions
from ..db.models import AIModelUsage
from ..redaction import redact
from ..types import Attempt, RequestContext
from .pricing import PriceBook, compute_cost, costs_differ, load_price_book, parse_usd

log = logging.getLogger("llmrelay.ledger")
LOCAL_USER = "local"
_MAX_ERROR = 2000
_DECIMAL_COLUMNS = ("cost_usd", "input_price", "output_price", "cached_input_price", "cache_write_price",
                    "provider_cost_usd")


def build_row(ctx: RequestContext, attempt: Attempt, book: PriceBook) -> dict[str, Any]:
    """The `ai_model_usage` row of one attempt, priced at the moment the attempt began."""
    created = datetime.fromtimestamp(attempt.started_at or time.time(), UTC)
    usage = attempt.usage
    price = book.lookup(attempt.provider, attempt.model, created)
    cost = compute_cost(usage, price)
    theirs = parse_usd(attempt.provider_cost_usd)
    status = attempt.status
    if status == "success" and attempt.link_index > 0:
        status = "fallback"
    message = attempt.error_message
    return {
        "id": uuid.uuid4(), "request_id": ctx.request_id, "attempt": attempt.position,
        "user_id": ctx.user_id or LOCAL_USER, "agent_id": ctx.agent_id,
        "provider": attempt.provider, "model": attempt.model, "status": status,
        "error_kind": attempt.error_kind.value if attempt.error_kind else None,
        "error_message": redact(message)[:_MAX_ERROR] if message else None,
        "prompt_tokens": usage.input_tokens if usage else 0,
        "completion_tokens": usage.output_tokens if usage else 0,
        "total_tokens": usage.total_tokens if usage else 0,
        "cached_prompt_tokens": usage.cached_input_tokens if usage else 0,
        "reasoning_tokens": usage.reasoning_tokens if usage else 0,
        "cache_write_tokens": usage.cache_write_tokens if usage else 0,
        "cost_usd": cost,
        "input_price": price.input if price else None,
        "output_price": price.output if price else None,
        "cached_input_price": price.cached_input if price else None,
        "cache_write_price": price.cache_write if price else None,
        "unpriced": cost is None,
        "provider_cost_usd": theirs,
        "cost_mismatch": costs_differ(cost, theirs),
        "latency_ms": attempt.latency_ms,
        "created_at": created,
    }


def _to_json(row: dict[str, Any]) -> str:
    out = dict(row)
    out["id"] = str(row["id"])
    out["created_at"] = row["created_at"].isoformat()
    for k in _DECIMAL_COLUMNS:
        if out[k] is not None:
            out[k] = str(out[k])
    return json.dumps(out, separators=(",", ":"))


def _from_json(line: str) -> dict[str, Any]:
    row = json.loads(line)
    row["id"] = uuid.UUID(row["id"])
    row["created_at"] = datetime.fromisoformat(row["created_at"])
    for k in _DECIMAL_COLUMNS:
        if row.get(k) is not None:
            row[k] = Decimal(row[k])
    return row


class Recorder:
    def __init__(self, engine: AsyncEngine, spool_dir: Path, *, batch_size: int = 500,
                 flush_interval: float = 0.2, retry_interval: float = 2.0, price_refresh: float = 30.0,
                 db_timeout: float = 10.0) -> None:
        self.engine = engine
        self.spool_dir = spool_dir
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry_interval = retry_interval
        self.price_refresh = price_refresh
        self.db_timeout = db_timeout
        self.prices = PriceBook()
        self.written = self.spooled = self.replayed = 0
        self._queue: deque[tuple[RequestContext, Attempt]] = deque()
        self._sessions = sessions(engine)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False
        self._db_down_since: float | None = None
        self._spool_seq = 0
        self._spool_path: Path | None = None
        self._prices_at = 0.0
        self._lock = asyncio.Lock()
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._insert = dialect.insert(AIModelUsage).on_conflict_do_nothing(index_elements=["id"])

    # -- the hot path -----------------------------------------------------------------------------

    def record(self, ctx: RequestContext, attempt: Attempt) -> None:
        """Queue one attempt.  Called on the request path: it does nothing else."""
        self._queue.append((ctx, attempt))
        if len(self._queue) >= self.batch_size:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            await self.reload_prices()
            self._task = asyncio.create_task(self._run(), name="llmrelay-ledger")

    async def aclose(self) -> None:
        """Write out everything queued (to the database, else the spool), then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()
        self._close_spool()

    async def flush(self) -> None:
        """Write every attempt queued so far."""
        async with self._lock:
            while self._queue:
                await self._write_batch()

    async def reload_prices(self) -> None:
        try:
            async with asyncio.timeout(self.db_timeout), self._sessions() as s:
                self.prices = await load_price_book(s)
            self._prices_at = time.monotonic()
        except Exception as exc:  # keep the prices we have; the next refresh tries again
            log.warning("could not load prices: %s", exc)

    # -- the background writer -------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._closing:
            try:
                async with asyncio.timeout(self.flush_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
                if time.monotonic() - self._prices_at > self.price_refresh:
                    await self.reload_prices()
                if self._db_down_since is None:
                    await self._replay()
            except Exception:  # the writer must outlive any one bad batch
                log.exception("ledger writer error")

    async def _write_batch(self) -> None:
        n = min(len(self._queue), self.batch_size)
        batch = [self._queue.popleft() for _ in range(n)]
        rows = [build_row(ctx, attempt, self.prices) for ctx, attempt in batch]
        if self._db_down_since is not None and time.monotonic() - self._db_down_since < self.retry_interval:
            self._spool(rows)
            return
        if await self._insert_rows(rows):
            if self._db_down_since is not None:
                log.warning("ledger database is back; replaying the spool")
                self._db_down_since = None
                self._close_spool()
            self.written += len(rows)
        else:
            self._spool(rows)

    async def _insert_rows(self, rows: list[dict[str, Any]]) -> bool:
        try:
            async with asyncio.timeout(self.db_timeout), self.engine.begin() as conn:
                await conn.execute(self._insert, rows)
            return True
        except (Exception, TimeoutError) as exc:
            if self._db_down_since is None:
                log.warning("ledger database unavailable (%s); spooling to %s", _brief(exc), self.spool_dir)
            self._db_down_since = time.monotonic()
            return False

    # -- the spool -----------------------------------------------------------------------------

    def _spool(self, rows: list[dict[str, Any]]) -> None:
        if self._spool_path is None:
            self._spool_seq += 1
            self._spool_path = self.spool_dir / f"{os.getpid()}-{int(time.time())}-{self._spool_seq}.part"
        data = "".join(_to_json(r) + "\n" for r in rows).encode()
        with open(self._spool_path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.spooled += len(rows)

    def _close_spool(self) -> None:
        if self._spool_path is not None and self._spool_path.exists():
            self._spool_path.rename(self._spool_path.with_suffix(".jsonl"))
        self._spool_path = None

    def _claimable(self) -> list[Path]:
        if not self.spool_dir.is_dir():
            return []
        files = sorted(self.spool_dir.glob("*.jsonl"))
        for stale in [*self.spool_dir.glob("*.part"), *self.spool_dir.glob("*.replay-*")]:
            # left by a process that died while writing or replaying it
            owner = stale.name.split("-", 1)[0] if stale.suffix == ".part" else stale.suffix.rsplit("-", 1)[-1]
            pid = int(owner) if owner.isdigit() else 0
            if pid != os.getpid() and not _alive(pid):
                files.append(stale)
        return files

    async def _replay(self) -> None:
        for path in self._claimable():
            claimed = path.with_name(f"{path.name.split('.', 1)[0]}.replay-{os.getpid()}")
            try:
                path.rename(claimed)
            except OSError:
                continue  # another process claimed it first
            rows = [_from_json(line) for line in claimed.read_text(encoding="utf-8").splitlines() if line.strip()]
            for i in range(0, len(rows), self.batch_size):
                if not await self._insert_rows(rows[i:i + self.batch_size]):
                    claimed.rename(claimed.with_name(claimed.name.split(".", 1)[0] + ".jsonl"))  # for later
                    return
            claimed.unlink()
            self.replayed += len(rows)
            log.warning("replayed %d ledger rows from %s", len(rows), path.name)

    def spool_files(self) -> list[Path]:
        return sorted(p for p in self.spool_dir.iterdir() if p.is_file()) if self.spool_dir.is_dir() else []


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _brief(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return redact(text)[:200]
