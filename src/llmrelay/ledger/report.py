"""How `usage_stats` reads the ledger: every figure per group in two light passes.

Pass 1 groups the window's rows by (group, latency bucket), a bucket being `BUCKET` ms of
latency, and sums everything additive (counts by status, tokens, cost, latency).  Those rows
are few (groups x buckets in use), so the totals, each group's figures and each group's
latency histogram are added up here, exactly (ints and Decimals).

The p95 latency is the nearest rank, the ceil(0.95 n)-th smallest latency of the n calls.
The histogram says which bucket holds that rank and how many calls lie below it; pass 2 reads
the exact latencies of those buckets only (a few hundred values per group at most) and counts
off the rest.  Both passes are plain hash aggregates the database runs in parallel; there is
no sort of the window and no window function.  (The former single-query form grouped by the
exact latency: for a 30-day window by day that was ~265,000 groups to hash, sort and rank.)

`requests` is the number of first attempts, or where one request can span groups (by provider
or model) of the first attempts on the group's provider (model): flags the fallback executor sets.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, func, literal_column, select, tuple_, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from ..db.models import AIModelUsage as U
from ..db.types import Money

BUCKET = 256
"""Latency bucket width in ms: pass 2 reads at most this many distinct latencies per group."""
CALL_STATUSES = ("success", "fallback", "failed")
SUMS = ("first", "first_provider", "first_model",
        "calls", "skipped", "successes", "fallbacks", "failures", "prompt", "completion", "total",
        "cached", "reasoning", "unpriced", "latency_sum")


@dataclass(slots=True)
class Tally:
    """One group's sums and latency histogram (bucket -> calls), added up from pass 1."""

    sums: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SUMS, 0))
    cost: Decimal = Decimal(0)
    buckets: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    p95: int | None = None

    def add(self, m: Any, bucket: int | None) -> None:
        for name in SUMS:
            self.sums[name] += int(m[name] or 0)
        if m["cost"] is not None:
            self.cost += m["cost"]
        if bucket is not None:
            self.buckets[bucket] += int(m["calls"])

    def p95_target(self) -> tuple[int, int] | None:
        """(bucket, rank within it) of the nearest-rank p95, or None without calls."""
        n = self.sums["calls"]  # (the histogram holds exactly the calls)
        if not n:
            return None
        rank, below = (95 * n + 99) // 100, 0
        for bucket in sorted(self.buckets):
            if below + self.buckets[bucket] >= rank:
                return bucket, rank - below
            below += self.buckets[bucket]
        raise AssertionError("unreachable: the histogram holds n calls")


BUCKET_SQL = (f"CASE WHEN ai_model_usage.status IN ({', '.join(repr(s) for s in CALL_STATUSES)}) "
              f"THEN ai_model_usage.latency_ms / {BUCKET} END")
"""A call's latency bucket (NULL for a skipped link), as literal SQL: on PostgreSQL the planner
matches it with the extended statistics of migration 0004 (a bound parameter would not match),
which tell it how few (group, bucket) pairs there are, so that it aggregates in parallel."""


def _pass1(exprs: list[ColumnElement[Any]], conds: list[ColumnElement[bool]]):
    is_call = U.status.in_(CALL_STATUSES)
    bucket = literal_column(BUCKET_SQL, Integer)

    def n(cond: ColumnElement[bool]) -> ColumnElement[int]:
        return func.count().filter(cond)

    return select(
        *(e.label(f"k{i}") for i, e in enumerate(exprs)), bucket.label("bucket"),
        n(U.attempt == 1).label("first"), n(U.first_on_provider).label("first_provider"),
        n(U.first_on_model).label("first_model"), n(is_call).label("calls"), n(U.status == "skipped").label("skipped"),
        n(U.status.in_(("success", "fallback"))).label("successes"), n(U.status == "fallback").label("fallbacks"),
        n(U.status == "failed").label("failures"),
        *(func.sum(col).label(name) for name, col in (
            ("prompt", U.prompt_tokens), ("completion", U.completion_tokens), ("total", U.total_tokens),
            ("cached", U.cached_prompt_tokens), ("reasoning", U.reasoning_tokens))),
        type_coerce(func.sum(U.cost_usd), Money()).label("cost"), n(U.unpriced).label("unpriced"),
        func.sum(U.latency_ms).filter(is_call).label("latency_sum"),
    ).where(*conds).group_by(*exprs, bucket)


async def _pass2(session: AsyncSession, exprs: list[ColumnElement[Any]], conds: list[ColumnElement[bool]],
                 totals: Tally, groups: dict[tuple, Tally]) -> None:
    """Reads the exact latencies of each group's p95 bucket (and the totals' bucket, in every
    group) and sets each Tally's `p95`."""
    targets = {key: t for key, tally in groups.items() if (t := tally.p95_target()) is not None}
    total_target = totals.p95_target()
    if total_target is None:
        return
    bucket = U.latency_ms // BUCKET
    wanted = {b for b, _ in targets.values()} | {total_target[0]}
    where = [*conds, U.status.in_(CALL_STATUSES), bucket.in_(sorted(wanted))]
    if exprs and len(wanted) > 1:  # only each group's own bucket, or the totals'
        pairs = [(*key, b) for key, (b, _) in targets.items()]
        where.append((bucket == total_target[0]) | tuple_(*exprs, bucket).in_(pairs))
    stmt = (select(*exprs, U.latency_ms, func.count()).where(*where)
            .group_by(*exprs, U.latency_ms).order_by(U.latency_ms))
    seen_total: dict[int, int] = defaultdict(int)
    seen: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
    for row in (await session.execute(stmt)).all():
        key, latency, count = tuple(row[:-2]), int(row[-2]), int(row[-1])
        if latency // BUCKET == total_target[0]:
            seen_total[latency] += count
        if key in targets and latency // BUCKET == targets[key][0]:
            seen[key].append((latency, count))
    totals.p95 = _nth(sorted(seen_total.items()), total_target[1])
    for key, (_, rank) in targets.items():
        groups[key].p95 = _nth(seen[key], rank)


def _nth(latencies: list[tuple[int, int]], rank: int) -> int:
    """The rank-th smallest of (latency, count) pairs in ascending order."""
    for latency, count in latencies:
        rank -= count
        if rank <= 0:
            return latency
    raise AssertionError("the ledger changed between the two passes")  # rows are only ever added


async def tally(session: AsyncSession, exprs: list[ColumnElement[Any]],
                conds: list[ColumnElement[bool]]) -> tuple[Tally, dict[tuple, Tally]]:
    """The totals and each group's Tally, keyed by the raw group key values."""
    totals, groups = Tally(), {}
    for row in (await session.execute(_pass1(exprs, conds))).all():
        m = row._mapping
        key, bucket = tuple(row[:len(exprs)]), m["bucket"]
        group = groups.get(key)
        if group is None:
            group = groups[key] = Tally()
        group.add(m, bucket)
        totals.add(m, bucket)
    await _pass2(session, exprs, conds, totals, groups)
    return totals, groups
