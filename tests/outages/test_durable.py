"""Durable answers (LLMRELAY_LEDGER_DURABLE): an answer completes only once the ledger rows of its attempts are
committed to the database or fsync'ed into the spool; the writer commits them as a group (every answer waiting
at once shares one batch).  Off, nothing waits.  On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os

import pytest
from sqlalchemy import func, select

from llmrelay import Relay
from llmrelay.config import load_settings
from llmrelay.db.engine import make_engine, sessions
from llmrelay.db.models import AIModelUsage
from llmrelay.ledger import spool as spool_module
from llmrelay.ledger.recorder import LedgerUnavailable, Recorder
from llmrelay.testing import FakeServers
from llmrelay.types import Attempt, Message, Outcome, RequestContext, Usage

UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"


def attempt(request_id: str) -> tuple[RequestContext, Attempt]:
    return (RequestContext(request_id, "agent", "alice"),
            Attempt(1, "openai", "gpt-4o", "success", latency_ms=5, usage=Usage(10, 5)))


async def count_rows(url: str) -> int:
    engine = make_engine(url)
    try:
        async with sessions(engine)() as s:
            return (await s.execute(select(func.count()).select_from(AIModelUsage))).scalar_one()
    finally:
        await engine.dispose()


async def test_settled_returns_once_the_attempts_are_committed_waking_the_writer_at_once(db_url, tmp_path):
    engine = make_engine(db_url)
    recorder = Recorder(engine, tmp_path / "spool", flush_interval=3600, durable=True)  # only a waiter wakes it
    await recorder.start()
    for i in range(3):
        recorder.record(*attempt(f"req-{i}"))
    await asyncio.wait_for(recorder.settled(), 10)
    assert await count_rows(db_url) == 3 and recorder.pending == 0
    await recorder.settled()  # nothing new: returns at once
    await recorder.aclose()
    await engine.dispose()


async def test_answers_waiting_together_share_one_batch(db_url, tmp_path, monkeypatch):
    batches: list[int] = []
    real_execute = Recorder._execute

    async def execute(self, rows, settle=None):
        batches.append(len(rows))
        await asyncio.sleep(0.05)  # a slow commit: the waiters that come meanwhile pile up for the next one
        await real_execute(self, rows, settle)

    monkeypatch.setattr(Recorder, "_execute", execute)
    engine = make_engine(db_url)
    recorder = Recorder(engine, tmp_path / "spool", flush_interval=3600, durable=True)
    await recorder.start()

    async def answer(i: int) -> None:
        await asyncio.sleep(i * 0.001)
        recorder.record(*attempt(f"req-{i}"))
        await recorder.settled()

    await asyncio.wait_for(asyncio.gather(*(answer(i) for i in range(200))), 20)
    assert sum(batches) == 200 and len(batches) <= 6, batches  # group commit, not 200 commits
    assert await count_rows(db_url) == 200
    await recorder.aclose()
    await engine.dispose()


async def test_while_the_database_is_away_settled_returns_once_the_rows_are_fsynced_into_the_spool(
        tmp_path, monkeypatch):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(spool_module.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    engine = make_engine(UNREACHABLE)
    recorder = Recorder(engine, tmp_path / "spool", flush_interval=3600, db_timeout=2, durable=True)
    await recorder.start()
    for i in range(3):
        recorder.record(*attempt(f"req-{i}"))
    await asyncio.wait_for(recorder.settled(), 10)
    assert synced and recorder.spooled == 3 and recorder.spooling is not None
    (part,) = (tmp_path / "spool").glob("*.part")
    assert len(part.read_text().splitlines()) == 3
    await recorder.aclose()
    await engine.dispose()


async def test_an_answer_whose_rows_can_be_neither_committed_nor_spooled_is_not_given(tmp_path):
    (tmp_path / "spool").write_text("a file where the spool directory should be")
    engine = make_engine(UNREACHABLE)
    recorder = Recorder(engine, tmp_path / "spool", flush_interval=3600, db_timeout=2, durable=True)
    recorder._task = asyncio.create_task(recorder._run())  # start() would make the directory (and fail)
    recorder.record(*attempt("req-lost"))
    with pytest.raises(LedgerUnavailable, match="could not be written"):
        await asyncio.wait_for(recorder.settled(), 10)
    assert recorder.spool_problem() == "spool-not-writable"
    recorder._closing = True
    recorder._wake.set()
    await recorder._task
    await engine.dispose()


@pytest.mark.parametrize("durable", [True, False], ids=["durable", "default"])
async def test_a_durable_answer_and_a_durable_stream_end_only_after_their_rows_are_committed(
        durable, db_url, tmp_path, monkeypatch):
    with FakeServers(["openai"]) as fakes:
        for var, value in fakes.env().items():
            monkeypatch.setenv(var, value)
        settings = load_settings(env_file=None, home=tmp_path / "home", database_url=db_url, max_retries=0,
                                 ledger_durable=durable)
        relay = Relay(settings)
        relay.ledger.recorder.flush_interval = 3600  # type: ignore[union-attr]  # only a waiting answer wakes it
        async with relay:
            outcome = await relay.run(None, "openai/gpt-4o-mini", [Message("user", "hello")])
            assert outcome.error is None
            whole = await count_rows(db_url)
            events = [e async for e in relay.run(None, "openai/gpt-4o-mini", [Message("user", "stream it")],
                                                 )]
            assert type(events[-1]) is Outcome and events[-1].error is None
            streamed = await count_rows(db_url)
    assert (whole, streamed) == ((1, 2) if durable else (0, 0))  # off: the rows come with the next flush
    assert await count_rows(db_url) == 2
