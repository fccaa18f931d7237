"""The database goes away for `LLMRELAY_TEST_OUTAGE_SECONDS` (default 30) while 20 clients keep asking: every
request is still answered, /readyz says `degraded` (200) meanwhile and `ready` after, and once the database is
back the spool is replayed in the order it was written, every attempt has exactly one row, and the spool is
empty.  PostgreSQL: the proxy in front of it closes every connection and refuses new ones.  SQLite: another
connection holds the file's write lock (`BEGIN EXCLUSIVE`)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter

from llmrelay.testing import faults
from tests.outages.conftest import report, wait_replayed
from tests.outages.load import Load

OUTAGE = float(os.environ.get("LLMRELAY_TEST_OUTAGE_SECONDS", "30"))
NOTICED = 8.0
"""How long the service may take to notice: a locked SQLite file is noticed when a write gives up after the
5 s busy timeout; an unreachable PostgreSQL at once."""


def spooled_ids(service) -> list[str]:
    """The row ids in the spool, in the order they were written (a line still being written is left out)."""
    ids = []
    for name in service.spool_files():
        for line in (service.spool / name).read_text().split("\n")[:-1]:
            ids.append(uuid.UUID(json.loads(line)["id"]).hex)
    return ids


def test_a_database_outage_under_load_is_served_degraded_then_every_row_lands_once(database, fakes, service):
    service.start()
    fakes["anthropic"].script(faults.overloaded(times=200))  # some answers come from the second link
    readiness: list[tuple[float, dict]] = []
    with Load(service.server.url, service.key) as load:
        time.sleep(2)
        assert service.ready()["status"] == "ready"
        down_at = time.monotonic()
        database.down()
        while time.monotonic() - down_at < OUTAGE:
            readiness.append((time.monotonic() - down_at, service.ready()))
            time.sleep(1)
        spooled_before_return = spooled_ids(service)
        database.up()
        up_at = time.monotonic()
        during = load.since(down_at)
        during = [a for a in during if a.ended <= up_at]
        back = None
        while back is None or back["status"] != "ready":
            assert time.monotonic() - up_at < 30, f"/readyz never said ready again: {back}"
            time.sleep(0.5)
            back = service.ready()
        time.sleep(2)  # traffic goes on after the return
    answers = load.answers

    assert during and all(a.status == 200 and a.answered for a in during), Counter(
        (a.kind, a.status, a.answered) for a in during)
    assert all(a.status == 200 and a.answered for a in answers), Counter((a.kind, a.status) for a in answers)
    assert all(r["http"] == 200 for _, r in readiness), readiness
    late = [r for t, r in readiness if t >= NOTICED]
    assert late and all(r["status"] == "degraded" and r["ledger"] == "spooling" for r in late), readiness
    assert late[-1]["spooled"] > 0
    attempts = sum(a.attempts for a in answers)

    rows = wait_replayed(service, database, attempts)
    ids = [i for i, _, _, _ in rows]
    assert len(set(ids)) == len(ids)  # no row twice
    per_request = Counter(rid for _, rid, _, _ in rows)
    assert all(per_request[a.request_id] == a.attempts for a in answers)  # every attempt, of every answer
    assert len(per_request) == len(answers)
    assert len({(rid, n) for _, rid, n, _ in rows}) == len(rows)
    inserted = {i: when for i, _, _, when in rows}
    replayed_order = [inserted[i] for i in spooled_before_return]
    assert replayed_order == sorted(replayed_order)  # the spool went in in the order it was written
    assert service.spool_files() == []
    assert service.ready()["status"] == "ready"
    report(f"outage[{database.backend}]", outage_s=OUTAGE, answers=len(answers), answered_during=len(during),
           attempts=attempts, rows=len(rows), spooled=len(spooled_before_return),
           fallbacks=sum(a.attempts == 2 for a in answers),
           readyz_during=sorted(Counter(r["status"] for _, r in readiness).items()))
