"""The ledger's speed: the recorder's throughput and CPU per row, and statistics over 1M rows.

1. Recording: 100,000 attempts through `Recorder` (default knobs: batches of 500) into a
   SQLite file and into a throw-away PostgreSQL database.  The attempts arrive as in the
   server: requests finishing at `--rate` per second, each attempt recorded when it ends and
   stamped with when it began, request ids made by `rows.new_id()` (`--request-ids uuid4` for
   the random ids of old).  Three passes per database:
   - `tight`: the caller records all attempts back to back (mean caller time per `record()`
     over the loop), then waits for the last row to commit;
   - `interleaved`: every `record()` timed on its own with `perf_counter_ns` (median, p99,
     max), yielding to the event loop every 100 calls so that the writer runs beside the caller
     as it does in the server;
   - `paced`: `--rate` attempts a second, as the server hands them over, so that the writer
     forms its batches as it does there (every `flush_interval`): the CPU per row and the
     share of one core at that rate, less what the pacing loop costs by itself.
   Rows/s is end to end: from the first `record()` to the last row committed (`flush()`
   returned), and the rows are counted afterwards.  CPU µs/row is this process's CPU time
   (every thread: SQLite works in aiosqlite's) over the same span, divided by the rows: run
   it under `taskset -c 1` for the one-core figure.  Baselines: the same rows, already built,
   inserted by the bare driver in the same batches (the recorder's own statement through
   stdlib sqlite3 / asyncpg `executemany`, and asyncpg COPY), and the cost of building rows
   alone (`RowCodec.build`, and the reference `build_row`).
2. Statistics: 1,000,000 realistic rows (60 days, 10 users, 6 agents, 5 providers) COPY'd into
   a throw-away PostgreSQL database, ANALYZE, then `usage_stats()` over the last 30 days grouped
   by provider, agent, model, day and user (median of 5 runs after a warm-up), and EXPLAIN
   (ANALYZE, BUFFERS) of the slowest.

    .venv/bin/python bench/ledger.py [--rows 100000] [--stats-rows 1000000] [--only record|stats]
    taskset -c 1 .venv/bin/python bench/ledger.py --only record --rows 30000 [--rate 1700] [--request-ids uuid4]
                                                  [--batch-size N] [--flush-interval S]

PostgreSQL comes from LLMRELAY_BENCH_PG (default postgresql://postgres@127.0.0.1:5432/test);
the databases it creates are dropped at the end.  Results: bench/results/ledger-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import sqlalchemy
from sqlalchemy import func, select, text

from llmrelay.db.engine import make_engine, sessions
from llmrelay.db.migrate import upgrade
from llmrelay.db.models import AIModelUsage
from llmrelay.db.types import quantize
from llmrelay.ledger.charges import charge_of
from llmrelay.ledger.pricing import load_price_book
from llmrelay.ledger.recorder import Recorder
from llmrelay.ledger.rows import RowCodec, build_row, new_id
from llmrelay.types import Attempt, ErrorKind, RequestContext, Usage

PG_ADMIN = os.environ.get("LLMRELAY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 500
MODELS = {  # provider: [(model, USD per 1M input, output)]
    "anthropic": [("claude-3-5-sonnet-20241022", "3", "15"), ("claude-3-5-haiku-20241022", "0.80", "4")],
    "openai": [("gpt-4o", "2.50", "10"), ("gpt-4o-mini", "0.15", "0.60"), ("gpt-4", "10", "30")],
    "google": [("gemini-2.0-flash", "0.075", "0.30"), ("gemini-2.5-pro", "1.25", "10")],
    "openrouter": [("meta-llama/llama-3.1-70b-instruct", "0.40", "0.40"), ("openai/gpt-4o-mini", "0.15", "0.60")],
    "ollama": [("llama3.1", "0", "0")],
}
AGENTS = ["general-agent", "code-agent", "support-agent", "summarizer", "translator", "research-agent"]
USERS = [f"user-{i:02d}" for i in range(10)]
COLUMNS = [c.name for c in AIModelUsage.__table__.columns]


# -- workloads ------------------------------------------------------------------------------------------


def attempts(n: int, seed: int = 1, rate: float = 1700.0, request_ids: str = "uuid7"
             ) -> list[tuple[RequestContext, Attempt]]:
    """`n` attempts as the fallback executor reports them: mostly served first time, some failed
    then served by a later link.  Requests finish `rate` a second, up to now; each attempt
    began its latency before it ended, so `created_at` trails the recording order by up to 9 s."""
    rnd = random.Random(seed)
    make_id = new_id if request_ids == "uuid7" else (lambda: uuid.uuid4().hex)
    finished = time.time() - n / rate
    out: list[tuple[RequestContext, Attempt]] = []
    providers = list(MODELS)
    while len(out) < n:
        finished += 1 / rate
        ctx = RequestContext(make_id(), rnd.choice(AGENTS), rnd.choice(USERS))
        chain = [rnd.choice(providers)] if rnd.random() < 0.9 else rnd.sample(providers, 2)
        latencies = [rnd.randint(150, 9000) for _ in chain]
        began = finished - sum(latencies) / 1000
        for i, provider in enumerate(chain):
            model = rnd.choice(MODELS[provider])[0]
            failed = i < len(chain) - 1
            usage = None if failed else Usage(rnd.randint(20, 4000), rnd.randint(5, 1500),
                                              cached_input_tokens=rnd.choice((0, 0, 0, 512)))
            out.append((ctx, Attempt(
                position=i + 1, provider=provider, model=model, status="failed" if failed else "success",
                link_index=i, latency_ms=latencies[i], usage=usage,
                error_kind=ErrorKind.OVERLOADED if failed else None,
                error_message="overloaded: try again later" if failed else None, started_at=began)))
            began += latencies[i] / 1000
    return out[:n]


async def pg_create(name: str) -> str:
    conn = await asyncpg.connect(PG_ADMIN, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name


async def pg_drop(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def raw_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def empty(engine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM ai_model_usage"))


async def count_rows(engine) -> int:
    async with sessions(engine)() as s:
        return (await s.execute(select(func.count()).select_from(AIModelUsage))).scalar_one()


# -- 1. recording ----------------------------------------------------------------------------------------


async def record_pass(url: str, work: list, mode: str, spool: Path, rate: float, knobs: dict) -> dict:
    engine = make_engine(url)
    await empty(engine)
    recorder = Recorder(engine, spool, **knobs)
    await recorder.start()
    n = len(work)
    record = recorder.record
    gc.collect()
    out: dict = {"mode": mode, "rows": n}
    cpu0 = time.process_time()
    if mode == "tight":
        t0 = time.perf_counter_ns()
        for ctx, a in work:
            record(ctx, a)
        t1 = time.perf_counter_ns()
        out["caller_mean_us"] = (t1 - t0) / n / 1000
    elif mode == "paced":  # `rate` attempts a second, as the server records them: batches as the writer forms them
        t0 = time.perf_counter_ns()
        await pace(work, record, rate)
    else:
        samples = []
        clock = time.perf_counter_ns
        t0 = clock()
        for i in range(0, n, 100):
            for ctx, a in work[i:i + 100]:
                s = clock()
                record(ctx, a)
                samples.append(clock() - s)
            await asyncio.sleep(0)
        samples.sort()
        out |= {"caller_median_us": samples[n // 2] / 1000, "caller_p99_us": samples[int(n * 0.99)] / 1000,
                "caller_max_us": samples[-1] / 1000}
    await recorder.flush()
    t_end = time.perf_counter_ns()
    out["cpu_us_per_row"] = (time.process_time() - cpu0) / n * 1e6
    out["seconds"] = (t_end - t0) / 1e9
    out["rows_per_s"] = n / out["seconds"]
    out["cpu_share"] = (time.process_time() - cpu0) / out["seconds"]
    if mode == "paced":  # less what the pacing loop costs by itself (it wakes TICKS times a second)
        out["cpu_us_per_row"] -= PACING_CPU[0] * out["seconds"] / n * 1e6
        out["cpu_share"] -= PACING_CPU[0]
    await recorder.aclose()
    out["rows_counted"] = await count_rows(engine)
    out["spooled"] = recorder.spooled
    await engine.dispose()
    return out


TICKS = 20
PACING_CPU = [0.0]
"""CPU seconds per second that `pace` costs with nothing to record (measured once)."""


async def pace(work: list, record, rate: float) -> None:
    """`record` every item of `work`, `rate` a second, in TICKS bursts a second."""
    start, done, tick = time.perf_counter(), 0, 0
    while done < len(work):
        tick += 1
        upto = min(len(work), int(tick * rate / TICKS))
        for item in work[done:upto]:
            record(*item)
        done = upto
        await asyncio.sleep(max(0.0, start + tick / TICKS - time.perf_counter()))


async def pacing_cpu(rate: float, seconds: float = 3.0) -> float:
    cpu0, t0 = time.process_time(), time.perf_counter()
    await pace([(None, None)] * int(rate * seconds), lambda *_: None, rate)
    return (time.process_time() - cpu0) / (time.perf_counter() - t0)


def timer_overhead_ns() -> float:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(100_000):
        s = clock()
        samples.append(clock() - s)
    return statistics.median(samples)


async def built_rows(url: str, codec: RowCodec, work: list) -> tuple[list[dict], list[tuple], dict]:
    """The reference rows and the driver rows of `work`, and what building each cost."""
    engine = make_engine(url)
    async with sessions(engine)() as s:
        book = await load_price_book(s)
    await engine.dispose()
    t0 = time.perf_counter()
    refs = [build_row(ctx, a, charge_of(a, book)) for ctx, a in work]
    t1 = time.perf_counter()
    charges = [codec.charge(a, book) for _, a in work]
    t2 = time.perf_counter()
    rows = [codec.build(ctx, a, c) for (ctx, a), c in zip(work, charges, strict=True)]
    t3 = time.perf_counter()
    n = len(work)
    return refs, rows, {"build_row_us": (t1 - t0) / n * 1e6, "charge_us": (t2 - t1) / n * 1e6,
                        "codec_build_us": (t3 - t2) / n * 1e6}


def _rate(n: int, t0: float, cpu0: float) -> tuple[float, float]:
    return n / (time.perf_counter() - t0), (time.process_time() - cpu0) / n * 1e6


async def pg_baselines(url: str, codec: RowCodec, refs: list[dict], rows: list[tuple]) -> dict:
    records = [tuple(r[c] for c in COLUMNS) for r in refs]  # COPY takes Decimal and aware datetimes
    conn = await asyncpg.connect(raw_dsn(url))
    out = {}
    try:
        for name in ("executemany", "copy"):
            await conn.execute("DELETE FROM ai_model_usage")
            t0, cpu0 = time.perf_counter(), time.process_time()
            for i in range(0, len(rows), BATCH):
                async with conn.transaction():
                    if name == "copy":
                        await conn.copy_records_to_table("ai_model_usage", records=records[i:i + BATCH],
                                                         columns=COLUMNS)
                    else:
                        await conn.executemany(codec.sql, rows[i:i + BATCH])
            out[f"asyncpg_{name}_rows_per_s"], out[f"asyncpg_{name}_cpu_us"] = _rate(len(rows), t0, cpu0)
        await conn.execute("DELETE FROM ai_model_usage")
    finally:
        await conn.close()
    return out


def sqlite_baseline(path: str, codec: RowCodec, rows: list[tuple]) -> dict:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("DELETE FROM ai_model_usage")
    t0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(0, len(rows), BATCH):
        conn.execute("BEGIN")
        conn.executemany(codec.sql, rows[i:i + BATCH])
        conn.execute("COMMIT")
    rate, cpu = _rate(len(rows), t0, cpu0)
    conn.execute("DELETE FROM ai_model_usage")
    conn.close()
    return {"sqlite3_executemany_rows_per_s": rate, "sqlite3_executemany_cpu_us": cpu}


async def bench_recording(n: int, tmp: Path, rate: float, request_ids: str, knobs: dict) -> dict:
    work = attempts(n, rate=rate, request_ids=request_ids)
    PACING_CPU[0] = await pacing_cpu(rate)
    out: dict = {"timer_overhead_ns": timer_overhead_ns(), "rate": rate, "request_ids": request_ids, "knobs": knobs,
                 "pacing_cpu_share": PACING_CPU[0]}
    pg_name = f"llmrelay_bench_rec_{os.getpid()}"
    sqlite_path = tmp / "ledger.db"
    targets = {"sqlite": f"sqlite+aiosqlite:///{sqlite_path}", "postgresql": await pg_create(pg_name)}
    try:
        for backend, url in targets.items():
            engine = make_engine(url)
            await upgrade(engine)
            await engine.dispose()
            res: dict = {"passes": []}
            for mode in ("tight", "interleaved", "paced"):
                p = await record_pass(url, work, mode, tmp / f"spool-{backend}", rate, knobs)
                print(f"  {backend:10s} {mode:11s} {p['rows_per_s']:8,.0f} rows/s end to end, "
                      f"{p['cpu_us_per_row']:5.1f} µs CPU/row ({p['rows_counted']:,} rows counted, "
                      f"{p['spooled']} spooled)  " + (
                          f"caller: {p['caller_mean_us']:.2f} µs mean over the loop" if mode == "tight" else
                          f"caller: median {p['caller_median_us']:.2f} µs, p99 {p['caller_p99_us']:.2f} µs, "
                          f"max {p['caller_max_us']:.0f} µs" if mode == "interleaved" else
                          f"{p['cpu_share']:.1%} of one core"), flush=True)
                res["passes"].append(p)
            codec = RowCodec(backend)
            refs, rows, res["build"] = await built_rows(url, codec, work)
            base = (await pg_baselines(url, codec, refs, rows) if backend == "postgresql"
                    else sqlite_baseline(str(sqlite_path), codec, rows))
            res["baseline"] = base
            print(f"  {backend:10s} baseline: RowCodec.build {res['build']['codec_build_us']:.1f} µs/row "
                  f"(build_row {res['build']['build_row_us']:.1f}); "
                  + ", ".join(f"{k} {v:,.1f}" for k, v in base.items()), flush=True)
            out[backend] = res
    finally:
        await pg_drop(pg_name)
    return out


# -- 2. statistics over 1M rows ----------------------------------------------------------------------------


def stats_rows(n: int, now: datetime, seed: int = 7):
    """`n` realistic rows over the 60 days before `now`, as COPY records (column order)."""
    rnd = random.Random(seed)
    prices = {(p, m): (Decimal(i) / 1000, Decimal(o) / 1000) for p, ms in MODELS.items() for m, i, o in ms}
    providers = list(MODELS)
    span = 60 * 86400
    made = 0
    while made < n:
        request_id = uuid.uuid4().hex
        user, agent = rnd.choice(USERS), rnd.choice(AGENTS)
        at = now - timedelta(seconds=rnd.random() * span)
        r = rnd.random()
        chain = [rnd.choice(providers)] if r < 0.88 else rnd.sample(providers, 2)
        for i, provider in enumerate(chain):
            model = rnd.choice(MODELS[provider])[0]
            pin, pout = prices[provider, model]
            last = i == len(chain) - 1
            status = ("success" if i == 0 else "fallback") if last else "failed"
            if r > 0.98 and i == 0 and not last:
                status = "skipped"
            ptok, ctok = (rnd.randint(20, 4000), rnd.randint(5, 1500)) if last else (0, 0)
            cost = quantize((ptok * pin + ctok * pout) / 1000)
            yield (uuid.uuid4(), request_id, i + 1, user, agent, provider, model, status,
                   None if last else "overloaded", None if last else "overloaded", ptok, ctok, ptok + ctok,
                   0, 0, 0, cost, pin, pout, None, None, False, None, False,
                   rnd.randint(150, 9000) if status != "skipped" else 0, at + timedelta(milliseconds=i),
                   True, True)  # first on its provider and model: a chain's links are distinct providers
            made += 1
            if made >= n:
                return


_WINDOW = "FROM ai_model_usage WHERE created_at >= $1 AND created_at < $2"
_CALL = "status IN ('success', 'fallback', 'failed')"
_ADDITIVE = (f"count(*) FILTER (WHERE {_CALL}), count(*) FILTER (WHERE status = 'fallback'), sum(prompt_tokens), "
             f"sum(completion_tokens), sum(cost_usd), sum(latency_ms) FILTER (WHERE {_CALL})")
BASELINES = {  # hand-written, by user: what each part of a usage_stats query costs on its own
    "scan: count(*) over the window": f"SELECT count(*) {_WINDOW}",
    "additive aggregates only, by user": f"SELECT user_id, {_ADDITIVE} {_WINDOW} GROUP BY 1",
    "+ requests as count(*) where attempt = 1": f"SELECT user_id, {_ADDITIVE}, count(*) FILTER (WHERE attempt = 1) "
                                                f"{_WINDOW} GROUP BY 1",
    "+ requests as count(DISTINCT request_id)": f'SELECT user_id, {_ADDITIVE}, count(DISTINCT request_id COLLATE "C") '
                                                f"{_WINDOW} GROUP BY 1",
    "+ p95 latency (percentile_disc)": f"SELECT user_id, {_ADDITIVE}, percentile_disc(0.95) WITHIN GROUP "
                                       f"(ORDER BY latency_ms) FILTER (WHERE {_CALL}) {_WINDOW} GROUP BY 1",
}


async def time_baselines(url: str, start: datetime, end: datetime, runs: int) -> list[dict]:
    conn = await asyncpg.connect(raw_dsn(url))
    out = []
    try:
        for name, sql in BASELINES.items():
            times = []
            for i in range(runs + 1):
                t0 = time.perf_counter()
                await conn.fetch(sql, start, end)
                if i:
                    times.append((time.perf_counter() - t0) * 1000)
            out.append({"query": name, "median_ms": statistics.median(times), "min_ms": min(times)})
            print(f"  baseline {name:42s} median {out[-1]['median_ms']:7.1f} ms", flush=True)
    finally:
        await conn.close()
    return out


async def explain(url: str, statements: list[tuple[str, tuple]]) -> list[str]:
    conn = await asyncpg.connect(raw_dsn(url))
    try:
        plans = []
        for sql, params in statements:
            rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *params)
            plans.append("\n".join(r[0] for r in rows))
        return plans
    finally:
        await conn.close()


async def bench_stats(n: int, runs: int = 5) -> dict:
    from llmrelay.ledger.stats import usage_stats

    name = f"llmrelay_bench_stats_{os.getpid()}"
    url = await pg_create(name)
    out: dict = {"rows": n}
    try:
        engine = make_engine(url)
        await upgrade(engine)
        now = datetime.now(UTC).replace(microsecond=0)
        conn = await asyncpg.connect(raw_dsn(url))
        t0 = time.perf_counter()
        chunk: list[tuple] = []
        for rec in stats_rows(n, now):
            chunk.append(rec)
            if len(chunk) == 50_000:
                await conn.copy_records_to_table("ai_model_usage", records=chunk, columns=COLUMNS)
                chunk = []
        if chunk:
            await conn.copy_records_to_table("ai_model_usage", records=chunk, columns=COLUMNS)
        out["load_seconds"] = time.perf_counter() - t0
        await conn.execute("ANALYZE ai_model_usage")
        out["rows_counted"] = await conn.fetchval("SELECT count(*) FROM ai_model_usage")
        out["rows_in_window"] = await conn.fetchval(
            "SELECT count(*) FROM ai_model_usage WHERE created_at >= $1 AND created_at < $2",
            now - timedelta(days=30), now)
        await conn.close()
        print(f"  loaded {out['rows_counted']:,} rows in {out['load_seconds']:.1f} s "
              f"({out['rows_in_window']:,} in the 30-day window)", flush=True)

        captured: list[tuple[str, tuple]] = []

        @sqlalchemy.event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
            if not statement.lstrip().upper().startswith("SET"):  # (EXPLAIN takes queries only)
                captured.append((statement, tuple(parameters or ())))

        cases = [(g, None) for g in ("provider", "agent", "model", "day", "user")] + [("day", USERS[3])]
        out["queries"] = []
        for group_by, user in cases:
            times = []
            for i in range(runs + 1):
                captured.clear()
                async with sessions(engine)() as s:
                    t0 = time.perf_counter()
                    report = await usage_stats(s, start=now - timedelta(days=30), end=now, group_by=group_by,
                                               user_id=user)
                    if i:  # the first run warms the cache
                        times.append((time.perf_counter() - t0) * 1000)
            label = group_by + (f", user {user}" if user else "")
            q = {"group_by": label, "median_ms": statistics.median(times), "min_ms": min(times),
                 "max_ms": max(times), "groups": len(report.groups), "calls": report.totals.calls,
                 "statements": list(captured)}
            out["queries"].append(q)
            print(f"  usage_stats 30 days by {label:14s} median {q['median_ms']:7.1f} ms "
                  f"(min {q['min_ms']:.1f}, max {q['max_ms']:.1f}; {q['groups']} groups, "
                  f"{q['calls']:,} calls)", flush=True)
        out["baselines"] = await time_baselines(url, now - timedelta(days=30), now, runs)
        slowest = max(out["queries"], key=lambda q: q["median_ms"])
        out["explain_of"] = slowest["group_by"]
        out["explain"] = await explain(url, slowest["statements"])
        for q in out["queries"]:
            q["statements"] = [s for s, _ in q["statements"]]
        await engine.dispose()
    finally:
        await pg_drop(name)
    return out


# -- main ------------------------------------------------------------------------------------------------------


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--stats-rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", choices=("record", "stats"))
    ap.add_argument("--rate", type=float, default=1700.0, help="requests finishing per second (recording)")
    ap.add_argument("--request-ids", choices=("uuid7", "uuid4"), default="uuid7",
                    help="request ids as rows.new_id() makes them, or random")
    ap.add_argument("--batch-size", type=int, help="Recorder knob (default: the Recorder's)")
    ap.add_argument("--flush-interval", type=float, help="Recorder knob (default: the Recorder's)")
    args = ap.parse_args()
    result: dict = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "python": sys.version.split()[0],
                    "platform": platform.platform(), "cpus": os.cpu_count(), "sqlalchemy": sqlalchemy.__version__,
                    "asyncpg": asyncpg.__version__}
    with tempfile.TemporaryDirectory(prefix="llmrelay-bench-") as tmp:
        if args.only in (None, "record"):
            print(f"recording {args.rows:,} attempts through the Recorder", flush=True)
            knobs = {k: v for k, v in (("batch_size", args.batch_size), ("flush_interval", args.flush_interval))
                     if v is not None}
            result["recording"] = await bench_recording(args.rows, Path(tmp), args.rate, args.request_ids, knobs)
    if args.only in (None, "stats"):
        print(f"usage_stats over {args.stats_rows:,} rows on PostgreSQL", flush=True)
        result["stats"] = await bench_stats(args.stats_rows, args.runs)
        print(f"\nEXPLAIN ANALYZE, usage_stats by {result['stats']['explain_of']}:")
        for plan in result["stats"]["explain"]:
            print(plan + "\n")
    summarize(result)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"ledger-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"results: {path}")


def summarize(result: dict) -> None:
    print("\nsummary (targets: caller < 20 µs per record; <= 40 µs CPU per row recorded, >= 25,000 rows/s on "
          "one core; 30-day group-by < 500 ms on PostgreSQL)")
    for backend, res in result.get("recording", {}).items():
        if backend not in ("sqlite", "postgresql"):
            continue
        tight, inter, paced = res["passes"]
        base = next(v for k, v in res["baseline"].items() if k.endswith("executemany_rows_per_s"))
        print(f"  {backend:10s} {tight['rows_per_s']:,.0f} rows/s, {tight['cpu_us_per_row']:.1f} µs CPU/row "
              f"({tight['rows_per_s'] / base:.2f}x the bare driver's executemany, {base:,.0f}); caller "
              f"{tight['caller_mean_us']:.2f} µs mean, {inter['caller_median_us']:.2f} µs median, "
              f"{inter['caller_p99_us']:.2f} µs p99; at {paced['rows_per_s']:,.0f} rows/s "
              f"{paced['cpu_us_per_row']:.1f} µs CPU/row, {paced['cpu_share']:.1%} of one core")
    if "stats" in result:
        worst = max(result["stats"]["queries"], key=lambda q: q["median_ms"])
        scan = result["stats"]["baselines"][0]["median_ms"]
        print(f"  stats      slowest 30-day group-by: {worst['group_by']} {worst['median_ms']:.0f} ms median "
              f"({worst['median_ms'] / scan:.1f}x a bare count(*) over the window, {scan:.0f} ms)")


if __name__ == "__main__":
    asyncio.run(main())
