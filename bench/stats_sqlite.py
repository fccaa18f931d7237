"""`usage_stats` over 1,000,000 ledger rows in SQLite, the default (embedded) database.

The same rows as ledger.py's statistics part (60 days, 10 users, 6 agents, 5 providers), written
in time order as the recorder appends them (pass `--shuffled` for ledger.py's random order, the
worst case: every row of a window is then a random page), ANALYZE, then `usage_stats()` over the
last 30 days by each grouping: median of `--runs` after a warm-up.  Baseline: a bare read of one
column over the same window (`count(latency_ms)`), the least any report can cost.

    .venv/bin/python bench/stats_sqlite.py [--rows 1000000] [--runs 3] [--shuffled]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledger import COLUMNS, stats_rows  # bench/ledger.py: the same generated rows
from llmrelay.db.engine import make_engine, sessions
from llmrelay.db.migrate import upgrade
from llmrelay.ledger.rows import RowCodec, insert_sql, sqlite_time
from llmrelay.ledger.stats import usage_stats


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--shuffled", action="store_true", help="rows in random time order (ledger.py's load)")
    args = ap.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=30)
    with tempfile.TemporaryDirectory(prefix="llmrelay-stats-sqlite-") as tmp:
        path = Path(tmp) / "ledger.db"
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        t0 = time.perf_counter()
        rows = list(stats_rows(args.rows, now))
        if not args.shuffled:
            rows.sort(key=lambda r: r[COLUMNS.index("created_at")])
        codec = RowCodec("sqlite")
        with sqlite3.connect(path) as db:
            for i in range(0, len(rows), 50_000):
                db.executemany(insert_sql(True), [codec.from_dict(dict(zip(COLUMNS, r, strict=True)))
                                                  for r in rows[i:i + 50_000]])
            db.execute("ANALYZE")
        del rows
        print(f"loaded {args.rows:,} rows ({'random' if args.shuffled else 'time'} order) in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        with sqlite3.connect(path) as db:
            base = []
            for i in range(args.runs + 1):
                t0 = time.perf_counter()
                db.execute("SELECT count(latency_ms) FROM ai_model_usage WHERE created_at >= ? AND created_at < ?",
                           (sqlite_time(start), sqlite_time(now))).fetchone()
                if i:
                    base.append((time.perf_counter() - t0) * 1000)
        scan = statistics.median(base)
        print(f"  baseline count(latency_ms) over the window  median {scan:7.1f} ms", flush=True)
        for group_by in (None, "provider", "agent", "model", "day", "user"):
            times = []
            for i in range(args.runs + 1):
                async with sessions(engine)() as s:
                    t0 = time.perf_counter()
                    report = await usage_stats(s, start=start, end=now, group_by=group_by)
                    if i:
                        times.append((time.perf_counter() - t0) * 1000)
            median = statistics.median(times)
            print(f"  usage_stats 30 days by {group_by or 'nothing (totals)':16s} median {median:7.1f} ms "
                  f"({median / scan:.1f}x the baseline; {len(report.groups)} groups, {report.totals.calls:,} calls)",
                  flush=True)
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
