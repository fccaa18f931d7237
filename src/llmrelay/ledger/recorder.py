"""The one place that writes the ledger: one row per attempt, off the hot path, never lost.

`record(ctx, attempt)` only appends to an in-memory queue (a few hundred nanoseconds: it is
the fallback executor's attempt observer, called on the request path).  A background task
turns queued attempts into rows (cost included; rows.py builds them in the driver's own form)
and inserts them in batches, one transaction and one driver `executemany` per batch.

When the database cannot take a batch, the rows go to an append-only spool file in
`LLMRELAY_HOME/spool/` (fsync'ed), and further batches follow them there without trying the
database more than once every `retry_interval`.  Once the database answers again the spool
files are replayed.  Every row carries its own UUID and every insert is ON CONFLICT DO NOTHING,
so a batch that reached the database but whose acknowledgement did not, replays without
duplicates.  `aclose()` (graceful shutdown) writes out everything queued.

Durable answers (`durable=True`, LLMRELAY_LEDGER_DURABLE): a request awaits `settled()` before its
answer completes, and that returns once every attempt queued so far is committed to the database
or fsync'ed into the spool.  Group commit: the waiter wakes the writer at once, and every waiter
that arrives while a batch is being written shares the next one.  Off, `record()` is unchanged and
nobody waits: a SIGKILL loses what was queued (at most about one `flush_interval` of attempts).

The spool's files (who writes, claims, replays and deletes them) are `spool.Spool`'s.

A value the database will not store must not hold back the rows around it nor the spool
behind it: names are clipped to their columns; a batch refused for its data is inserted row by
row, and what is still refused (like a spool line a crash cut short) goes to `rejected.ndjson`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..db.budgets import BudgetStore
from ..db.engine import sessions
from ..redaction import redact
from ..types import Attempt, LLMRelayError, RequestContext
from .charges import Charge
from .pricing import PriceBook, load_price_book
from .rows import RowCodec
from .spool import Spool

log = logging.getLogger("llmrelay.ledger")
_ZERO = Decimal(0)


class LedgerUnavailable(LLMRelayError):
    """A durable answer's rows could be neither committed nor spooled (the spool's disk is full or not
    writable): the answer is not given."""


class Recorder:
    def __init__(self, engine: AsyncEngine, spool_dir: Path, *, batch_size: int = 500,
                 flush_interval: float = 0.2, retry_interval: float = 2.0, price_refresh: float = 30.0,
                 db_timeout: float = 10.0, durable: bool = False) -> None:
        self.engine = engine
        self.spool_dir = spool_dir
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry_interval = retry_interval
        self.price_refresh = price_refresh
        self.db_timeout = db_timeout
        self.durable = durable
        """Answers wait for their rows (`settled()`); read by the pipeline, which then awaits it."""
        self.prices = PriceBook()
        self.written = self.spooled = self.replayed = 0
        self.rejected = 0  # rows set aside in rejected.ndjson: the database will not store them
        self.dropped = 0  # attempts whose row could not even be built (a bug; logged)
        self._queue: deque[tuple[RequestContext, Attempt, Charge]] = deque()
        self._taken = self._settled = 0  # attempts taken off the queue; of those, committed or spooled
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()  # (taken + queued then, its future)
        self._sessions = sessions(engine)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False
        self._db_down_since: float | None = None
        self._down_reason = ""
        self._prices_at = 0.0
        self._lock = asyncio.Lock()
        self._rows = RowCodec(engine.dialect.name)
        self._spool = Spool(spool_dir, self._rows)
        self.cost_observers: list[Callable[[str, Decimal | None], None]] = []
        """Told each row's provider and cost (None: unpriced) as the row is built, off the request path
        (the /metrics cost counter)."""

    # -- the hot path -----------------------------------------------------------------------------

    def record(self, ctx: RequestContext, attempt: Attempt) -> Charge:
        """Price one attempt (once: its answer and its row both use this charge) and queue it.
        Called on the request path: it does nothing else."""
        charge = self._rows.charge(attempt, self.prices)
        self._queue.append((ctx, attempt, charge))
        if len(self._queue) >= self.batch_size:
            self._wake.set()
        return charge

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def spooling(self) -> str | None:
        """Why the rows go to the spool (the database's last error, e.g. `ConnectionRefusedError`); None
        while they go to the database."""
        return self._down_reason if self._db_down_since is not None else None

    @property
    def running(self) -> bool:
        """The background writer is running (started, not closed, not dead)."""
        return self._task is not None and not self._task.done()

    def spool_problem(self) -> str | None:
        """Why rows could not be kept if the database went away now (None: they could): the writer is not
        running, or the spool directory takes no file (not writable, or its disk is full)."""
        if not self.running:
            return "writer-stopped"
        return self._spool.problem()

    async def settled(self) -> None:
        """Return once every attempt recorded so far is committed to the database or fsync'ed into the
        spool (raises what kept it from both).  Wakes the writer now: waiters share its next batch."""
        upto = self._taken + len(self._queue)
        if self._settled >= upto:
            return
        if not self.running:  # no writer to wake (not started, or closed): write them now
            await self.flush()
            return
        done = asyncio.get_running_loop().create_future()
        self._waiters.append((upto, done))
        self._wake.set()
        await done

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
        while self._queue:
            await self.flush()
        self._close_spool()

    async def flush(self) -> None:
        """Write every attempt queued so far.  Those queued meanwhile wait for the next round: a
        writer that chased them would, under steady traffic, write ever smaller batches."""
        async with self._lock:
            left = len(self._queue)
            while left > 0 and self._queue:
                n = min(left, self.batch_size)
                left -= n
                self._taken += n
                try:
                    await self._write_batch(n)
                except BaseException as exc:  # the batch is lost (a bug, or no room for the spool): say so
                    self._settle(n, exc)
                    raise
                self._settle(n)

    def _settle(self, n: int, exc: BaseException | None = None) -> None:
        """`n` more attempts are written: tell the waiters whose attempts they were.  Or they are lost (`exc`):
        fail every waiter, since any may have had an attempt among them (one that did not gets no answer
        though its rows follow: a request that is not answered may have rows, never the other way round)."""
        self._settled += n
        lost = exc is not None and not isinstance(exc, asyncio.CancelledError)  # cancelled mid-insert: spooled
        waiters = self._waiters
        while waiters and (lost or waiters[0][0] <= self._settled):
            done = waiters.popleft()[1]
            if done.done():  # its request went away meanwhile
                continue
            if lost:
                done.set_exception(LedgerUnavailable(f"the ledger rows could not be written: {_brief(exc)}"))
            else:
                done.set_result(None)

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
                if self._db_down_since is not None and self._retry_due():
                    await self._probe()
                if self._db_down_since is None:
                    await self._replay()
            except Exception:  # the writer must outlive any one bad batch
                log.exception("ledger writer error")

    def _retry_due(self) -> bool:
        return self._db_down_since is None or time.monotonic() - self._db_down_since >= self.retry_interval

    async def _write_batch(self, n: int) -> None:
        build, queue = self._build, self._queue
        rows = []
        settle: dict[str, Decimal] = {}
        for _ in range(min(n, len(queue))):
            ctx, attempt, charge = queue.popleft()
            row = build(ctx, attempt, charge)
            if row is not None:
                rows.append(row)
            if ctx.leases and charge.pico:
                cost = charge.cost
                for lease in ctx.leases:
                    settle[lease] = settle.get(lease, _ZERO) + cost  # type: ignore[operator]
        if not rows:
            return
        for observe in self.cost_observers:
            for row in rows:
                observe(*RowCodec.provider_and_cost(row))
        if not self._retry_due():
            self._spool_rows(rows)
            return
        refused = self.rejected
        try:
            inserted = await self._insert_rows(rows, settle)
        except asyncio.CancelledError:  # the writer is torn down mid-insert: keep the batch
            self._spool_rows(rows)
            self._close_spool()
            raise
        if inserted:
            self._database_back()
            self.written += len(rows) - (self.rejected - refused)
        else:
            self._spool_rows(rows)

    def _build(self, ctx: RequestContext, attempt: Attempt, charge: Charge) -> tuple | None:
        try:
            return self._rows.build(ctx, attempt, charge)
        except Exception:  # a bug: lose this one row, not the batch around it
            log.exception("could not build the ledger row of %r", attempt)
            self.dropped += 1
            return None

    async def _insert_rows(self, rows: list[tuple], settle: dict[str, Decimal] | None = None) -> bool:
        """Insert `rows` (idempotently) and add their costs to their budget leases (`settle`, in the same
        transaction); False when the database is unavailable.  Rows that go to the spool instead do not
        settle their leases: those hold the money until they expire (never counting it as unspent)."""
        try:
            await self._execute(rows, settle)
            return True
        except (Exception, TimeoutError) as exc:
            if not _refused_data(exc):
                self._database_down(exc)
                return False
        for row in rows:  # the database answers but refuses something in this batch: find it
            try:
                await self._execute([row])
            except (Exception, TimeoutError) as exc:
                if not _refused_data(exc):
                    self._database_down(exc)
                    return False  # the rows inserted so far come back from the spool as no-ops
                self._reject(self._rows.to_json(row), exc)
        if settle:
            try:
                async with asyncio.timeout(self.db_timeout), self.engine.begin() as conn:
                    await BudgetStore.settle(conn, settle)
            except (Exception, TimeoutError) as exc:  # the leases hold the money until they expire
                log.warning("budget leases not settled: %s", _brief(exc))
        return True

    async def _execute(self, rows: list[tuple], settle: dict[str, Decimal] | None = None) -> None:
        async with asyncio.timeout(self.db_timeout), self.engine.begin() as conn:
            await conn.exec_driver_sql(self._rows.sql, rows)
            if settle:
                await BudgetStore.settle(conn, settle)

    def _database_down(self, exc: BaseException) -> None:
        if self._db_down_since is None:
            log.warning("ledger database unavailable (%s); spooling to %s", _brief(exc), self.spool_dir)
        self._db_down_since = time.monotonic()
        self._down_reason = _kind(exc)

    def _database_back(self) -> None:
        if self._db_down_since is not None:
            log.warning("ledger database is back; replaying the spool")
            self._db_down_since = None
            self._close_spool()

    async def _probe(self) -> None:
        """Is the database back, though nothing new came to write?  The probe is a real write (a
        locked SQLite file still answers SELECT 1): our first spooled row again, a no-op if it
        went in before."""
        row = self._spool.first_row()
        if row is None or await self._insert_rows([row]):
            self._database_back()

    # -- the spool -----------------------------------------------------------------------------

    def _spool_rows(self, rows: list[tuple]) -> None:
        self._spool.append(rows)
        self.spooled += len(rows)

    def _close_spool(self) -> None:
        self._spool.close()

    def _reject(self, line: str, exc: BaseException) -> None:
        """Set aside what can never be inserted, where a person can look at it."""
        path = self._spool.reject(line, _brief(exc))
        log.error("ledger row refused (%s); kept in %s", _brief(exc), path)
        self.rejected += 1

    async def _replay(self) -> None:
        for path in self._spool.claimable():
            if self._closing:
                return
            claimed = self._spool.claim(path)
            if claimed is None:
                continue  # another process claimed it first
            done = False
            try:
                done = await self._replay_file(claimed)
            finally:
                self._spool.release(claimed, done)
            if not done:  # the database went away again, or we are shutting down: for later
                return
            log.warning("replayed the ledger rows of %s", path.name)

    async def _replay_file(self, path: Path) -> bool:
        """Insert every row of a spool file, a batch at a time; False when it must wait."""
        for rows in self._spool.batches(path, self.batch_size, self._reject):
            if self._closing or not await self._insert_rows(rows):
                return False
            self.replayed += len(rows)
            if self._waiters:  # durable answers do not wait for the whole spool
                await self.flush()
        return True

    def spool_files(self) -> list[Path]:
        return self._spool.files()


def _refused_data(exc: BaseException) -> bool:
    """Whether the database (or its driver) refused the values, rather than could not be reached:
    a value SQLAlchemy could not bind, a driver's DataError (asyncpg: out of range for the column
    type), an overflow, or SQLSTATE class 22 (data) or 23 (integrity).  Not any ValueError:
    aiosqlite reports a closed connection as one."""
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return True
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, (DataError, IntegrityError, OverflowError)) or type(seen).__name__ == "DataError":
            return True
        if str(getattr(seen, "sqlstate", None) or "")[:2] in ("22", "23"):
            return True
        seen = getattr(seen, "orig", None) if isinstance(seen, DBAPIError) else seen.__cause__
    return False


def _kind(exc: BaseException) -> str:
    """The name of what went wrong, under SQLAlchemy's wrapper (`ConnectionRefusedError`, `OperationalError`)."""
    inner = getattr(exc, "orig", None) if isinstance(exc, DBAPIError) else None
    return type(inner if inner is not None else exc).__name__


def _brief(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return redact(text)[:200]
