"""Ledger rows built fast (integer cost, the driver's own value forms) are the reference rows:
the same cost to the pico-dollar as `compute_cost`, the same stored values as SQLAlchemy's column
types write, read back the same through the ORM, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url

from llmrelay.db.engine import make_engine, sessions
from llmrelay.db.models import AIModelUsage
from llmrelay.ledger import rows as rows_module
from llmrelay.ledger.charges import Charge, Rate, charge_of, micros, total_cost
from llmrelay.ledger.pricing import Price, PriceBook, compute_cost, load_price_book
from llmrelay.ledger.rows import COLUMNS, SQLITE_NULL, RowCodec, build_row, new_id, pico
from llmrelay.redaction import register_secret
from llmrelay.types import Attempt, ErrorKind, RequestContext, Usage

CHANGE = datetime(2026, 6, 1, 12, 0, 0, 250_000, tzinfo=UTC)
"""gpt-4o's price changes at this moment in the test book."""
BOOK = PriceBook([
    Price.per_million("openai", "gpt-4o", "2.50", "10", "1.25", effective_from=CHANGE - timedelta(days=30)),
    Price.per_million("openai", "gpt-4o", "5", "20", effective_from=CHANGE),
    Price.per_million("openai", "*", "1", "2", effective_from=CHANGE - timedelta(days=60)),
    Price.per_million("anthropic", "claude-3-5-sonnet-20241022", "3", "15", "0.30", "3.75",
                      effective_from=CHANGE - timedelta(days=30)),
    Price.per_million("ollama", "llama3.1", "0", "0", effective_from=CHANGE - timedelta(days=30)),
    Price("odd", "sub-pico", Decimal("0.0000000000015"), Decimal("0.002"), effective_from=CHANGE - timedelta(days=1)),
])
MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-sonnet-20241022"),
          ("ollama", "llama3.1"), ("google", "unknown-model"), ("odd", "sub-pico")]
DIALECTS = ["sqlite", "postgresql"]
SQLITE_DATETIME = sqlite.DATETIME().bind_processor(sqlite.dialect())


def without_id(row: tuple) -> tuple:
    return row[1:]


def build(codec: RowCodec, ctx: RequestContext, attempt: Attempt, book: PriceBook = BOOK) -> tuple:
    """The row of `attempt` as the recorder builds it: charged on the request path, built later."""
    return codec.build(ctx, attempt, codec.charge(attempt, book))


# -- the cost ---------------------------------------------------------------------------------------------

whole_picos = st.integers(min_value=0, max_value=10**15)
prices = st.builds(
    lambda p, e: Decimal(p).scaleb(-12) if e is None else Decimal(p).scaleb(e),
    whole_picos, st.one_of(st.none(), st.integers(min_value=-16, max_value=-3)))
counts = st.one_of(st.integers(min_value=0, max_value=5_000_000), st.integers(min_value=-10, max_value=2**40))


@given(inp=counts, out=counts, cached=counts, written=counts, pin=prices, pout=prices,
       pcached=st.one_of(st.none(), prices), pwrite=st.one_of(st.none(), prices))
@example(inp=1, out=0, cached=0, written=0, pin=Decimal("0.000000000500"), pout=Decimal(0), pcached=None,
         pwrite=None)  # half a pico-dollar: to even (0)
@example(inp=3, out=0, cached=0, written=0, pin=Decimal("0.000000000500"), pout=Decimal(0), pcached=None,
         pwrite=None)  # 1.5 pico-dollars: to even (2)
@settings(max_examples=3000)
def test_the_integer_cost_is_compute_cost_to_the_pico_dollar(inp, out, cached, written, pin, pout, pcached, pwrite):
    assume(not (inp == 0 and out == 0))  # no tokens: the row costs 0 before any price is looked at
    price = Price("p", "m", pin, pout, pcached, pwrite)
    usage = Usage(inp, out, cached_input_tokens=cached, cache_write_tokens=written)
    rate = Rate.of(price, int)
    whole = all(v is None or (v == v.quantize(Decimal("1e-12")) and v.as_tuple().exponent >= -12)
                for v in (pin, pout, pcached, pwrite))
    assert (rate is not None) == whole
    if rate is None:
        return
    cost = rate.cost(inp, out, cached, written)
    plain = (min(inp, out, cached, written) >= 0 and max(inp, out, cached, written) < 10**9
             and max(v for v in (pin, pout, pcached, pwrite) if v is not None) <= 1000)
    if plain:  # the integer road covers every realistic call (< 1e9 tokens, <= $1,000 per 1k) ...
        assert cost >= 0
    if cost >= 0:  # ... and wherever it is taken, it is the Decimal result exactly
        assert Decimal(cost).scaleb(-12) == compute_cost(usage, price)
        assert cost == pico(compute_cost(usage, price))


# -- time -------------------------------------------------------------------------------------------------


@given(st.one_of(st.floats(min_value=0, max_value=4e9, allow_nan=False),
                 st.integers(min_value=0, max_value=4_000_000_000),
                 st.integers(min_value=0, max_value=4_000_000_000).map(lambda s: s + 0.9999995)))
@example(1764000000.0000005)
@example(1764000000.9999996)
def test_micros_name_the_microsecond_that_fromtimestamp_does(t):
    moment = datetime.fromtimestamp(t, UTC)
    assert datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros(t)) == moment
    sqlalchemy_text = SQLITE_DATETIME(moment.replace(tzinfo=None))  # what UTCDateTime binds on SQLite
    assert RowCodec("sqlite")._sqlite_time(micros(t)) == sqlalchemy_text


# -- whole rows -----------------------------------------------------------------------------------------------

attempts = st.builds(
    lambda model, status, link, usage, started, error, latency, cost, names: (
        RequestContext(names[0], names[1], names[2]),
        Attempt(position=link + 1, provider=model[0], model=model[1], status=status, link_index=link,
                latency_ms=latency, error_kind=ErrorKind.OVERLOADED if error else None, error_message=error,
                usage=usage, provider_cost_usd=cost, started_at=started)),
    st.sampled_from([*MODELS, ("openai", "o" * 300)]),
    st.sampled_from(["success", "failed", "skipped"]),
    st.integers(min_value=0, max_value=2),
    st.one_of(st.none(), st.builds(Usage, counts, counts, counts, counts, counts)),
    st.floats(min_value=CHANGE.timestamp() - 5, max_value=CHANGE.timestamp() + 5),
    st.one_of(st.none(), st.just("upstream said: key sk-test-abcdefghijklmnop is bad"), st.text(max_size=50)),
    st.integers(min_value=0, max_value=60_000),
    st.one_of(st.none(), st.sampled_from(["0.00014", "1.4e-05", "nonsense", "-0.5", "123.0000000000005"])),
    st.tuples(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80),
              st.one_of(st.none(), st.text(min_size=1, max_size=80))),
)


@pytest.mark.parametrize("dialect", DIALECTS)
@given(item=attempts)
@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_row_built_fast_is_the_reference_row_in_the_drivers_form(dialect, item):
    ctx, attempt = item
    codec = RowCodec(dialect)
    charge = codec.charge(attempt, BOOK)
    assert charge == charge_of(attempt, BOOK)  # the integer road prices as the Decimal one
    built, reference = codec.build(ctx, attempt, charge), build_row(ctx, attempt, charge_of(attempt, BOOK))
    assert without_id(built) == without_id(codec.from_dict(reference))
    assert RowCodec.provider_and_cost(built) == (reference["provider"], reference["cost_usd"])
    assert reference["cost_usd"] == charge.cost


@pytest.mark.parametrize("dialect", DIALECTS)
def test_common_attempts_take_the_integer_road_and_odd_ones_the_reference(dialect, monkeypatch):
    reference = []
    real = rows_module.build_row
    monkeypatch.setattr(rows_module, "build_row", lambda *a: reference.append(a[1].model) or real(*a))
    codec = RowCodec(dialect)
    at = CHANGE.timestamp()
    common = [Attempt(1, p, m, "success", usage=Usage(1200, 300, 512), started_at=at) for p, m in MODELS[:5]]
    common.append(Attempt(1, "openai", "gpt-4o", "failed", error_kind=ErrorKind.TIMEOUT, error_message="timed out",
                          started_at=at))
    odd = [Attempt(1, "odd", "sub-pico", "success", usage=Usage(10, 1), started_at=at),  # price below a pico-dollar
           Attempt(1, "openai", "with-their-cost", "success", usage=Usage(10, 1), provider_cost_usd="0.1",
                   started_at=at),
           Attempt(1, "openai", "negative", "success", usage=Usage(-5, 1), started_at=at)]
    for a in common + odd:
        build(codec, RequestContext("r", "agent", "user"), a)
    assert reference == ["sub-pico", "with-their-cost", "negative"]


def test_each_attempt_is_priced_at_the_moment_it_began_across_a_price_change():
    codec = RowCodec("sqlite")
    cost = COLUMNS.index("cost_usd")
    just_before = (CHANGE - timedelta(microseconds=1)).timestamp()
    rows = [build(codec, RequestContext("r", "a", "u"), Attempt(1, "openai", "gpt-4o", "success",
                                                                 usage=Usage(1000, 1000), started_at=t))
            for t in (just_before, CHANGE.timestamp(), just_before)]
    # 1000 × $2.50/1M + 1000 × $10/1M before the change; $5 and $20 from it on (cached in pico-dollars)
    assert [r[cost] for r in rows] == [12_500_000_000, 25_000_000_000, 12_500_000_000]


def test_a_secret_in_an_error_message_is_redacted_in_the_row():
    register_secret("hunter2-very-secret")
    codec = RowCodec("postgresql")
    row = build(codec, RequestContext("r", "a", "u"), Attempt(1, "openai", "gpt-4o", "failed",
                                                               error_message="bad key hunter2-very-secret",
                                                               started_at=time.time()))
    assert row[COLUMNS.index("error_message")] == "bad key [redacted]"


@given(items=st.lists(attempts, max_size=6))
@settings(max_examples=300)
def test_a_requests_cost_is_the_sum_of_its_attempts_costs_or_none_when_one_is_unpriced(items):
    codec = RowCodec("sqlite")
    charges = [codec.charge(a, BOOK) for _, a in items]
    costs = [compute_cost(a.usage, BOOK.lookup(a.provider, a.model, datetime.fromtimestamp(a.started_at, UTC)))
             for _, a in items]
    assert [c.cost for c in charges] == costs
    assert total_cost(charges) == (None if None in costs else sum(costs, Decimal(0)))


def test_a_charge_without_a_price_is_null_never_zero_and_one_without_tokens_is_zero():
    unknown = Attempt(1, "google", "unknown-model", "success", usage=Usage(10, 1), started_at=CHANGE.timestamp())
    skipped = Attempt(2, "google", "unknown-model", "skipped", started_at=CHANGE.timestamp())
    assert charge_of(unknown, BOOK) == Charge(None, None) and charge_of(unknown, BOOK).cost is None
    assert charge_of(skipped, BOOK).cost == 0 and total_cost([charge_of(skipped, BOOK)]) == 0
    assert total_cost([charge_of(skipped, BOOK), charge_of(unknown, BOOK)]) is None


# -- spool lines ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_spool_lines_keep_the_format_of_before_and_come_back_as_the_same_row(dialect):
    codec = RowCodec(dialect)
    row = build(codec, RequestContext("req-1", "agent", None), Attempt(
        1, "anthropic", "claude-3-5-sonnet-20241022", "success", usage=Usage(1000, 500, 200, 0, 300),
        started_at=CHANGE.timestamp()))
    line = codec.to_json(row)
    data = json.loads(line)
    assert list(data) == list(COLUMNS)
    assert str(uuid.UUID(data["id"])) == data["id"]  # the canonical UUID text, as str(uuid) wrote it
    assert datetime.fromisoformat(data["created_at"]) == CHANGE and data["created_at"].endswith("+00:00")
    assert Decimal(data["cost_usd"]) == Decimal("0.010185") and data["provider_cost_usd"] is None
    assert data["user_id"] == "local" and data["unpriced"] is False
    assert codec.from_json(line) == row


OLD_LINE = ('{"id":"0b7b3f1e-3c5a-4a8e-9d2f-7d9b1c2e4f60","request_id":"req-old","attempt":1,"user_id":"alice",'
           '"agent_id":"bench-agent","provider":"openai","model":"gpt-4o","status":"success","error_kind":null,'
           '"error_message":null,"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,'
           '"cached_prompt_tokens":0,"reasoning_tokens":0,"cache_write_tokens":0,"cost_usd":"0.000450000000",'
           '"input_price":"0.002500000000","output_price":"0.010000000000","cached_input_price":"0.001250000000",'
           '"cache_write_price":null,"unpriced":false,"provider_cost_usd":"0.00014","cost_mismatch":true,'
           '"latency_ms":120,"created_at":"2026-11-26T12:31:42.473854+00:00"}')
"""A spool line as the recorder wrote it before rows were built for the driver."""


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_spool_line_written_before_this_change_replays(dialect):
    row = dict(zip(COLUMNS, RowCodec(dialect).from_json(OLD_LINE), strict=True))
    assert row["id"] == "0b7b3f1e3c5a4a8e9d2f7d9b1c2e4f60"
    money = {k: row[k] for k in ("cost_usd", "input_price", "provider_cost_usd", "cache_write_price")}
    if dialect == "sqlite":
        assert row["created_at"] == "2026-11-26 12:31:42.473854"
        assert money == {"cost_usd": 450_000_000, "input_price": 2_500_000_000, "provider_cost_usd": 140_000_000,
                         "cache_write_price": SQLITE_NULL}
        assert (row["unpriced"], row["cost_mismatch"]) == (0, 1)
    else:
        assert row["created_at"] == datetime(2026, 11, 26, 12, 31, 42, 473854, tzinfo=UTC)
        assert money == {"cost_usd": "450000000", "input_price": "2500000000", "provider_cost_usd": "140000000",
                         "cache_write_price": None}
        assert (row["unpriced"], row["cost_mismatch"]) == (False, True)


@pytest.mark.parametrize(("line", "error"), [
    ('{"id":"5f0c2a', ValueError),  # a write a crash cut short
    (OLD_LINE.replace("0b7b3f1e-3c5a", "nope"), ValueError),
    (OLD_LINE.replace("+00:00", ""), ValueError),  # a naive time, which UTCDateTime refuses too
    (OLD_LINE.replace('"latency_ms":120,', ""), KeyError),
    (OLD_LINE.replace('"0.000450000000"', '"1e40"'), ArithmeticError),  # past NUMERIC(24, 12)
])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_spool_line_no_column_takes_is_refused_when_read(line, error, dialect):
    with pytest.raises(error):
        RowCodec(dialect).from_json(line)


# -- ids ----------------------------------------------------------------------------------------------------------


def test_new_ids_are_uuid7_sorted_by_creation_time_and_unique():
    first = [new_id() for _ in range(20_000)]
    time.sleep(0.002)
    later = new_id()
    assert len(set(first)) == len(first)
    for text in (first[0], later):
        u = uuid.UUID(text)
        assert len(text) == 32 and u.hex == text and u.version == 7 and u.variant == uuid.RFC_4122
        assert abs(int(text[:12], 16) / 1000 - time.time()) < 5  # 48-bit Unix milliseconds up front
    assert max(first) < later


# -- the database -----------------------------------------------------------------------------------------------

SAMPLES = [
    Attempt(1, "openai", "gpt-4o", "success", latency_ms=812, usage=Usage(1200, 340, 512, 40)),
    Attempt(2, "anthropic", "claude-3-5-sonnet-20241022", "success", link_index=1, latency_ms=95,
            usage=Usage(1000, 500, 200, 0, 300)),
    Attempt(1, "openai", "gpt-4o-mini", "failed", latency_ms=3, error_kind=ErrorKind.RATE_LIMITED,
            error_message="429: slow down", usage=Usage(17, 0)),
    Attempt(1, "google", "not-priced", "success", usage=Usage(10, 10)),
    Attempt(1, "ollama", "llama3.1", "skipped"),
    Attempt(1, "openrouter", "meta-llama/llama-3.1-70b-instruct", "success", usage=Usage(3000, 1000),
            provider_cost_usd="0.0016000000000005"),
    Attempt(1, "openrouter", "openai/gpt-4o-mini", "success", usage=Usage(3000, 1000), provider_cost_usd="-2.5"),
]


async def raw_rows(url: str) -> dict[str, tuple]:
    """Every stored row as the database holds it, by request id, without the id."""
    cols = ", ".join(c for c in COLUMNS if c not in ("id", "request_id"))
    if url.startswith("sqlite"):
        with sqlite3.connect(make_url(url).database) as conn:
            return {r[0]: r[1:] for r in conn.execute(f"SELECT request_id, {cols} FROM ai_model_usage")}  # noqa: S608
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        text = ", ".join(f"{c}::text" for c in cols.split(", "))
        return {r[0]: tuple(r[1:]) for r in await conn.fetch(f"SELECT request_id, {text} FROM ai_model_usage")}  # noqa: S608
    finally:
        await conn.close()


async def test_rows_the_recorder_writes_are_stored_and_read_back_as_the_orms_own(db_url, tmp_path):
    """Each sample written twice: the reference row through SQLAlchemy's ORM insert, the fast
    row through the recorder's driver statement.  The database holds the same values, and the
    ORM reads the same Python values (Decimal, aware UTC datetime, UUID) back."""
    from llmrelay.ledger.recorder import Recorder

    engine = make_engine(db_url)
    async with sessions(engine)() as s:
        book = await load_price_book(s)
    started = time.time()
    references = []
    recorder = Recorder(engine, tmp_path / "spool", flush_interval=3600)
    await recorder.start()
    for i, sample in enumerate(SAMPLES):
        a = dataclasses.replace(sample, started_at=started + i)
        references.append(build_row(RequestContext(f"orm-{i}", "agent", "user"), a, charge_of(a, book)))
        recorder.record(RequestContext(f"fast-{i}", "agent", "user"), a)
    await recorder.flush()
    async with engine.begin() as conn:
        await conn.execute(insert(AIModelUsage), references)
    await recorder.aclose()
    raw = await raw_rows(db_url)
    assert len(raw) == 2 * len(SAMPLES)
    for i in range(len(SAMPLES)):
        assert raw[f"fast-{i}"] == raw[f"orm-{i}"]
    async with sessions(engine)() as s:
        read = {r.request_id: r for r in (await s.execute(select(AIModelUsage))).scalars()}
    await engine.dispose()
    for i in range(len(SAMPLES)):
        fast, orm = read[f"fast-{i}"], read[f"orm-{i}"]
        for c in COLUMNS:
            if c not in ("id", "request_id"):
                assert (getattr(fast, c), type(getattr(fast, c))) == (getattr(orm, c), type(getattr(orm, c))), c
        assert isinstance(fast.id, uuid.UUID) and fast.id.version == 7
        assert fast.created_at.tzinfo is not None and fast.created_at.utcoffset() == timedelta(0)
    assert read["fast-0"].cost_usd == Decimal("0.00576")  # 688 × 2.5 + 512 × 1.25 + 340 × 10, per 1M
    assert read["fast-3"].cost_usd is None and read["fast-3"].unpriced
    assert read["fast-5"].provider_cost_usd == Decimal("0.0016")  # rounded half-even to the pico-dollar


async def test_a_row_keeps_the_charge_its_answer_reported_though_prices_change_before_it_is_written(db_url, tmp_path):
    from llmrelay.ledger.recorder import Recorder

    engine = make_engine(db_url)
    recorder = Recorder(engine, tmp_path / "spool", flush_interval=3600)
    await recorder.start()
    recorder.prices = BOOK
    attempt = Attempt(1, "openai", "gpt-4o", "success", usage=Usage(1000, 1000), started_at=CHANGE.timestamp())
    charge = recorder.record(RequestContext("kept", "agent", "user"), attempt)
    recorder.prices = PriceBook([Price.per_million("openai", "gpt-4o", "99", "99",
                                                   effective_from=CHANGE - timedelta(days=365))])
    await recorder.flush()
    await recorder.aclose()
    async with sessions(engine)() as s:
        row = (await s.execute(select(AIModelUsage).where(AIModelUsage.request_id == "kept"))).scalar_one()
    await engine.dispose()
    assert charge.cost == row.cost_usd == Decimal("0.025")  # 1000 x $5/1M + 1000 x $20/1M, as answered
    assert row.input_price == Decimal("0.005") and row.unpriced is False
