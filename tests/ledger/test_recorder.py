"""The recorder never loses a row: not across a graceful shutdown with rows in flight, not while
the database is away (rows wait in the spool and are replayed, once, when it returns), not when
a process dies with a spool file half written.  Every test runs on SQLite and PostgreSQL.

An outage is real on both: PostgreSQL is reached through a TCP proxy that the test stops
(listener closed, open connections killed) and restarts; SQLite is held under `BEGIN EXCLUSIVE`
by another connection, so that writes time out as they do when another process holds the file.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from llmrelay.db.engine import make_engine, sessions
from llmrelay.db.models import AIModelUsage
from llmrelay.ledger.pricing import Price, add_prices
from llmrelay.ledger.recorder import Recorder
from llmrelay.ledger.rows import RowCodec
from llmrelay.types import Attempt, RequestContext, Usage

FAST = {"flush_interval": 0.01, "retry_interval": 0.05, "db_timeout": 3.0}


def attempt(request_id: str, *, started_at: float | None = None, usage: Usage | None = None,
            model: str = "gpt-4o", agent_id: str = "bench-agent", latency_ms: int = 120):
    ctx = RequestContext(request_id=request_id, agent_id=agent_id, user_id="alice")
    return ctx, Attempt(position=1, provider="openai", model=model, status="success", latency_ms=latency_ms,
                        usage=usage or Usage(input_tokens=100, output_tokens=20),
                        started_at=started_at or time.time())


async def ledger_rows(url: str) -> list[AIModelUsage]:
    engine = make_engine(url)
    try:
        async with sessions(engine)() as s:
            return list((await s.execute(select(AIModelUsage))).scalars().all())
    finally:
        await engine.dispose()


async def assert_recorded_exactly_once(url: str, request_ids: list[str]) -> None:
    rows = await ledger_rows(url)
    assert len(rows) == len(request_ids)
    assert sorted(r.request_id for r in rows) == sorted(request_ids)  # each attempt once, none twice
    assert len({r.id for r in rows}) == len(rows)


async def eventually(check, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


def spool_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


# -- outages ----------------------------------------------------------------------------------------


class PgProxy:
    """A TCP proxy in front of PostgreSQL that can go away (and lose one COMMIT's reply)."""

    def __init__(self, url: str) -> None:
        self.upstream = make_url(url)
        self.port = 0
        self.lose_next_commit_ack = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def url(self) -> str:
        return self.upstream.set(port=self.port).render_as_string(hide_password=False)

    async def up(self) -> None:
        if self._server is not None and self._server.is_serving():
            return
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        await self._server.wait_closed()

    async def _connection(self, client_r, client_w) -> None:
        up_r, up_w = await asyncio.open_connection(self.upstream.host, self.upstream.port or 5432)
        self._writers |= {client_w, up_w}
        committing = asyncio.Event()

        async def pipe(src, dst, to_server: bool) -> None:
            try:
                while data := await src.read(65536):
                    if not to_server and committing.is_set():  # the COMMIT went through: drop its reply
                        client_w.transport.abort()
                        up_w.transport.abort()
                        return
                    if to_server and self.lose_next_commit_ack and b"COMMIT;\x00" in data:
                        self.lose_next_commit_ack = False
                        committing.set()
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                return
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(client_r, up_w, True), pipe(up_r, client_w, False))
        self._writers -= {client_w, up_w}


class SqliteLock:
    """Another connection holds the SQLite file's write lock, as a busy or stuck process would."""

    def __init__(self, url: str) -> None:
        self.path = make_url(url).database
        self._url = url
        self._conn: sqlite3.Connection | None = None

    def url(self) -> str:
        return self._url

    async def up(self) -> None:
        if self._conn is not None:
            self._conn.execute("ROLLBACK")
            self._conn.close()
            self._conn = None

    async def down(self) -> None:
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        deadline = time.monotonic() + 10
        while True:  # the recorder may be mid-write: take the lock as soon as it lets go
            try:
                conn.execute("BEGIN EXCLUSIVE")
                break
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    conn.close()
                    raise
                await asyncio.sleep(0.005)
        self._conn = conn


@pytest.fixture
async def outage(db_url):
    """Turns the recorder's database off (`down()`) and on (`up()`); `engine()` is the recorder's."""
    place = SqliteLock(db_url) if db_url.startswith("sqlite") else PgProxy(db_url)
    await place.up()
    engines = []

    def engine():
        e = make_engine(place.url())
        if db_url.startswith("sqlite"):  # give up on a locked file after 50 ms, not 5 s
            @event.listens_for(e.sync_engine, "connect")
            def _short_busy_timeout(dbapi_conn, _record) -> None:
                dbapi_conn.cursor().execute("PRAGMA busy_timeout=50")
        engines.append(e)
        return e

    place.engine = engine
    yield place
    await place.up()
    for e in engines:
        await e.dispose()
    if isinstance(place, PgProxy):
        await place.down()


# -- graceful shutdown ---------------------------------------------------------------------------------


async def test_a_graceful_shutdown_writes_every_attempt_still_queued(db_url, tmp_path):
    engine = make_engine(db_url)
    recorder = Recorder(engine, tmp_path / "spool")
    await recorder.start()
    ids = [f"req-{i}" for i in range(5000)]
    for rid in ids:
        recorder.record(*attempt(rid))
    assert recorder.pending == 5000
    await recorder.aclose()
    await engine.dispose()
    await assert_recorded_exactly_once(db_url, ids)
    assert recorder.written == 5000 and recorder.spooled == 0 and spool_names(tmp_path / "spool") == []


async def test_record_only_queues_the_attempt_the_row_is_built_in_the_background(db_url, tmp_path, monkeypatch):
    built = []
    real_build = RowCodec.build
    monkeypatch.setattr(RowCodec, "build", lambda *a: built.append(1) or real_build(*a))
    engine = make_engine(db_url)
    recorder = Recorder(engine, tmp_path / "spool", flush_interval=3600)
    await recorder.start()
    for i in range(200):
        recorder.record(*attempt(f"req-{i}"))
    assert built == [] and recorder.pending == 200
    await recorder.aclose()
    await engine.dispose()
    assert len(built) == 200 and len(await ledger_rows(db_url)) == 200


async def test_a_flush_writes_what_was_queued_when_it_began_and_later_arrivals_wait_for_the_next_round(
        db_url, tmp_path, monkeypatch):
    """Under steady traffic a writer that chased new arrivals would write ever smaller batches."""
    engine = make_engine(db_url)
    recorder = Recorder(engine, tmp_path / "spool", batch_size=100, flush_interval=3600)
    await recorder.start()
    batches: list[int] = []
    real_execute = Recorder._execute

    async def execute_while_traffic_goes_on(self, rows, settle=None):
        batches.append(len(rows))
        if len(batches) <= 3:
            self.record(*attempt(f"late-{len(batches)}"))
        await real_execute(self, rows, settle)

    monkeypatch.setattr(Recorder, "_execute", execute_while_traffic_goes_on)
    ids = [f"req-{i}" for i in range(250)]
    for rid in ids:
        recorder.record(*attempt(rid))
    await recorder.flush()
    assert batches == [100, 100, 50] and recorder.pending == 3
    await recorder.aclose()  # a graceful shutdown writes the late ones too
    await engine.dispose()
    assert batches == [100, 100, 50, 3]
    await assert_recorded_exactly_once(db_url, [*ids, "late-1", "late-2", "late-3"])


# -- the database goes away and comes back ---------------------------------------------------------------


async def test_rows_recorded_while_the_database_is_away_are_spooled_then_replayed_once(outage, db_url, tmp_path):
    spool = tmp_path / "spool"
    recorder = Recorder(outage.engine(), spool, batch_size=20, **FAST)
    await recorder.start()
    ids: list[str] = []
    stop = asyncio.Event()

    async def traffic() -> None:  # requests keep arriving through the whole outage
        while not stop.is_set():
            for _ in range(5):
                ids.append(f"req-{len(ids)}")
                recorder.record(*attempt(ids[-1]))
            await asyncio.sleep(0.005)

    producer = asyncio.create_task(traffic())

    async def wrote_some() -> bool:
        return recorder.written >= 50
    await eventually(wrote_some, "rows written while the database is up")
    await outage.down()
    seen_part = []

    async def spooled_some() -> bool:
        seen_part.extend(n for n in spool_names(spool) if n.endswith(".part"))
        return recorder.spooled >= 100 and bool(seen_part)
    await eventually(spooled_some, "rows spooled to a .part file while the database is away")
    assert len(await ledger_rows(db_url)) < len(ids)
    await outage.up()

    async def replayed_all() -> bool:
        return recorder.replayed == recorder.spooled and spool_names(spool) == []
    await eventually(replayed_all, "the spool replayed after the database came back")
    stop.set()
    await producer
    await recorder.aclose()
    await assert_recorded_exactly_once(db_url, ids)
    assert recorder.written + recorder.spooled == len(ids)


async def test_the_spool_is_replayed_when_the_database_returns_even_if_nothing_new_is_recorded(
        outage, db_url, tmp_path):
    recorder = Recorder(outage.engine(), tmp_path / "spool", **FAST)
    await recorder.start()
    await outage.down()
    ids = [f"req-{i}" for i in range(300)]
    for rid in ids:
        recorder.record(*attempt(rid))

    async def all_spooled() -> bool:
        return recorder.spooled == 300 and recorder.pending == 0
    await eventually(all_spooled, "every row in the spool")
    await outage.up()

    async def all_landed() -> bool:
        return len(await ledger_rows(db_url)) == 300
    await eventually(all_landed, "the spool replayed with no new traffic")
    await recorder.aclose()
    await assert_recorded_exactly_once(db_url, ids)
    assert spool_names(tmp_path / "spool") == []


async def spool_left_at_shutdown(outage, spool: Path, ids: list[str]) -> Path:
    """A recorder shut down while the database is away leaves its rows in one `.jsonl` file."""
    recorder = Recorder(outage.engine(), spool, **FAST)
    await recorder.start()
    await outage.down()
    for rid in ids:
        recorder.record(*attempt(rid))
    await recorder.aclose()
    assert recorder.spooled == len(ids) and recorder.written == 0
    (name,) = spool_names(spool)
    assert name.endswith(".jsonl")
    return spool / name


async def replay_with_a_new_recorder(outage, db_url: str, spool: Path, expected: int) -> Recorder:
    """What the next process start does: a new recorder finds the spool and replays it."""
    recorder = Recorder(outage.engine(), spool, **FAST)
    await recorder.start()

    async def replayed() -> bool:
        return spool_names(spool) == [] and len(await ledger_rows(db_url)) == expected
    await eventually(replayed, "the next recorder replaying the spool")
    await recorder.aclose()
    return recorder


async def test_rows_spooled_at_shutdown_are_replayed_by_the_next_recorder(outage, db_url, tmp_path):
    ids = [f"req-{i}" for i in range(1200)]
    await spool_left_at_shutdown(outage, tmp_path / "spool", ids)
    assert await ledger_rows(db_url) == []
    await outage.up()
    later = await replay_with_a_new_recorder(outage, db_url, tmp_path / "spool", 1200)
    assert later.replayed == 1200
    await assert_recorded_exactly_once(db_url, ids)


async def test_replaying_rows_that_were_already_inserted_adds_nothing(outage, db_url, tmp_path):
    ids = [f"req-{i}" for i in range(700)]
    file = await spool_left_at_shutdown(outage, tmp_path / "spool", ids)
    shutil.copy(file, tmp_path / "copy")
    await outage.up()
    await replay_with_a_new_recorder(outage, db_url, tmp_path / "spool", 700)
    before = {r.id: (r.request_id, r.cost_usd, r.created_at) for r in await ledger_rows(db_url)}
    shutil.copy(tmp_path / "copy", file)  # the same rows again: their insert went through, its ack did not
    await replay_with_a_new_recorder(outage, db_url, tmp_path / "spool", 700)
    after = {r.id: (r.request_id, r.cost_usd, r.created_at) for r in await ledger_rows(db_url)}
    assert after == before
    await assert_recorded_exactly_once(db_url, ids)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_batch_whose_commit_reply_was_lost_is_spooled_and_not_duplicated(outage, db_url, tmp_path):
    recorder = Recorder(outage.engine(), tmp_path / "spool", **FAST)
    await recorder.start()
    outage.lose_next_commit_ack = True
    ids = [f"req-{i}" for i in range(250)]
    for rid in ids:
        recorder.record(*attempt(rid))
    await recorder.flush()
    assert recorder.spooled == 250 and recorder.written == 0  # the recorder did not hear back …
    assert len(await ledger_rows(db_url)) == 250  # … but the database had committed them

    async def replayed() -> bool:
        return recorder.replayed == 250 and spool_names(tmp_path / "spool") == []
    await eventually(replayed, "the spool replayed")
    await recorder.aclose()
    await assert_recorded_exactly_once(db_url, ids)


# -- a process that died -----------------------------------------------------------------------------------

DYING_PROCESS = textwrap.dedent("""
    import asyncio, os, sys, time
    from pathlib import Path
    from llmrelay.db.engine import make_engine
    from llmrelay.ledger.recorder import Recorder
    from llmrelay.types import Attempt, RequestContext, Usage

    async def main():
        recorder = Recorder(make_engine(sys.argv[1]), Path(sys.argv[2]), db_timeout=2)
        await recorder.start()
        for i in range(int(sys.argv[3])):
            recorder.record(RequestContext(f"dead-{i}", "agent", "bob"),
                            Attempt(1, "ollama", "llama3", "success", usage=Usage(10, 5), started_at=time.time()))
        await recorder.flush()
        os._exit(0 if recorder.spooled == int(sys.argv[3]) else 3)  # dies without a graceful shutdown

    asyncio.run(main())
""")


@pytest.fixture(scope="module")
def dead_process_spool(tmp_path_factory) -> tuple[str, bytes]:
    """The `.part` file a real process left when it died while its database was unreachable."""
    spool = tmp_path_factory.mktemp("dead-spool")
    unreachable = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"
    proc = subprocess.Popen([sys.executable, "-c", DYING_PROCESS, unreachable, str(spool), "40"],
                            stderr=subprocess.PIPE, text=True)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    (file,) = spool.iterdir()
    assert file.name.startswith(f"{proc.pid}-") and file.suffix == ".part"
    return file.name.split("-", 1)[1], file.read_bytes()


@pytest.mark.parametrize("owner", ["dead", "this-pid"])
async def test_a_part_file_left_by_a_process_that_died_mid_write_is_replayed(
        owner, dead_process_spool, db_url, tmp_path):
    rest, content = dead_process_spool
    # "this-pid": an earlier run that had the same pid (a container's server is pid 1 every time)
    pid = 999_999_999 if owner == "dead" else os.getpid()
    spool = tmp_path / "spool"
    spool.mkdir()
    torn = b'{"id":"5f0c2a'  # the write the crash interrupted
    (spool / f"{pid}-{rest}").write_bytes(content + torn)
    engine = make_engine(db_url)
    recorder = Recorder(engine, spool, **FAST)
    await recorder.start()

    async def replayed() -> bool:
        return recorder.replayed == 40 and not any(n.endswith((".part", ".jsonl")) or ".replay-" in n
                                                   for n in spool_names(spool))
    await eventually(replayed, "the dead process's spool replayed")
    await recorder.aclose()
    await engine.dispose()
    await assert_recorded_exactly_once(db_url, [f"dead-{i}" for i in range(40)])
    (rejected,) = (spool / "rejected.ndjson").read_text().splitlines()
    assert json.loads(rejected)["line"] == torn.decode()


# -- rows the database refuses ----------------------------------------------------------------------------


async def test_overlong_names_are_clipped_to_their_columns_not_refused(db_url, tmp_path):
    engine = make_engine(db_url)
    recorder = Recorder(engine, tmp_path / "spool", **FAST)
    await recorder.start()
    recorder.record(*attempt("req-long", agent_id="a" * 100, model="m" * 300))
    recorder.record(*attempt("req-ok"))
    await recorder.aclose()
    await engine.dispose()
    rows = {r.request_id: r for r in await ledger_rows(db_url)}
    assert rows["req-long"].agent_id == "a" * 64 and rows["req-long"].model == "m" * 200
    assert set(rows) == {"req-long", "req-ok"} and recorder.spooled == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_row_the_database_refuses_is_set_aside_and_does_not_hold_back_its_batch(db_url, tmp_path):
    engine = make_engine(db_url)
    recorder = Recorder(engine, tmp_path / "spool", **FAST)
    await recorder.start()
    ids = [f"req-{i}" for i in range(99)]
    for rid in ids[:50]:
        recorder.record(*attempt(rid))
    recorder.record(*attempt("req-bad", latency_ms=2**40))  # out of the INTEGER column's range
    for rid in ids[50:]:
        recorder.record(*attempt(rid))
    await recorder.aclose()
    await engine.dispose()
    await assert_recorded_exactly_once(db_url, ids)
    assert (recorder.written, recorder.rejected, recorder.spooled) == (99, 1, 0)
    assert spool_names(tmp_path / "spool") == ["rejected.ndjson"]
    (line,) = (tmp_path / "spool" / "rejected.ndjson").read_text().splitlines()
    assert json.loads(json.loads(line)["line"])["request_id"] == "req-bad"


# -- price history --------------------------------------------------------------------------------------------


async def test_calls_before_and_after_a_price_change_each_keep_their_own_price(db_url, tmp_path):
    engine = make_engine(db_url)
    recorder = Recorder(engine, tmp_path / "spool", **FAST)
    await recorder.start()
    change = time.time() - 3600
    usage = Usage(input_tokens=1000, output_tokens=500, cached_input_tokens=200)
    recorder.record(*attempt("written-before-the-change", started_at=change - 1800, usage=usage))
    await recorder.flush()
    async with sessions(engine)() as s, s.begin():  # gpt-4o was $2.50 / $10 (cached $1.25) per 1M
        await add_prices(s, [Price.per_million("openai", "gpt-4o", "5", "20", "2.5", source="manual",
                                               effective_from=datetime.fromtimestamp(change, UTC))])
    await recorder.reload_prices()
    recorder.record(*attempt("started-before-recorded-after", started_at=change - 60, usage=usage))
    recorder.record(*attempt("started-after", started_at=change + 60, usage=usage))
    await recorder.aclose()
    await engine.dispose()
    rows = {r.request_id: r for r in await ledger_rows(db_url)}
    old = (Decimal("0.0025"), Decimal("0.01"), Decimal("0.00125"))
    new = (Decimal("0.005"), Decimal("0.02"), Decimal("0.0025"))
    # 800 uncached + 200 cached input, 500 output
    assert {k: (r.input_price, r.output_price, r.cached_input_price, r.cost_usd) for k, r in rows.items()} == {
        "written-before-the-change": (*old, Decimal("0.00725")),
        "started-before-recorded-after": (*old, Decimal("0.00725")),
        "started-after": (*new, Decimal("0.0145")),
    }
