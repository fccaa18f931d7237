"""`kill -9` of `llmrelay serve` (one worker) while 20 clients keep asking, then a restart on the same home and
database, which replays whatever spool the dead process left.  What is guaranteed of the answered requests
(a 200 whose whole body, or whole stream through `[DONE]`, arrived), matched by request id (`x-request-id`, the
rows' `request_id`) against the attempts each answer reports:

  LLMRELAY_LEDGER_DURABLE=true: every answered request has every one of its rows, with the database up (they
      were committed) and while it is away (they were fsync'ed into the spool, and the restart replays them);
  the default: only the attempts that ended within the last flush interval (0.2 s) may be lost; the test holds
      it to: every request answered more than 1 s before the kill has all its rows.

Either way no row is written twice, and rows of requests cut off by the kill (never answered) may be there."""

from __future__ import annotations

import time
from collections import Counter

from llmrelay.testing import faults
from tests.outages.conftest import report
from tests.outages.load import Load
from tests.servers import wait_for

MARGIN = 1.0
"""Without durability, rows of answers older than this at the kill must be there (the writer flushes every 0.2 s)."""
LOAD = 2.5
"""Seconds of load before the kill."""


def kill_under_load(service, database, away: bool) -> tuple[list, float, list[str]]:
    """Load, then (the database taken away first when `away`: the rows go to the spool) SIGKILL, then the database
    back and a restart on the same home and database, which replays the spool the dead process left."""
    with Load(service.server.url, service.key) as load:
        time.sleep(LOAD)
        if away:
            database.down()
            wait_for("the ledger to spool", lambda: service.ready()["status"] == "degraded", 15, every=0.25)
            time.sleep(1)
        service.server.proc.kill()  # SIGKILL
        killed_at = time.monotonic()
        service.server.proc.wait(10)
        time.sleep(0.3)
    left = service.spool_files()
    if away:
        database.up()
        assert any(n.endswith(".part") for n in left), left  # the dead process's spool, to be replayed
    service.start()
    wait_for("the restart to replay the spool", lambda: not service.spool_files()
             and service.ready()["status"] == "ready", 30, every=0.25)
    time.sleep(0.5)  # a last flush
    return load.answers, killed_at, left


def check(name: str, rows: list, answers: list, killed_at: float, left: list[str]) -> list:
    """No row twice, none of an answer beyond its attempts; report the figures.  Returns the answered requests
    that miss a row."""
    per_request = Counter(rid for _, rid, _, _ in rows)
    answered = [a for a in answers if a.answered]
    assert answered and all(a.status == 200 for a in answered)
    assert len({(rid, n) for _, rid, n, _ in rows}) == len(rows) == len({i for i, _, _, _ in rows})  # none twice
    assert all(per_request[a.request_id] <= a.attempts for a in answered)
    missing = [a for a in answered if per_request[a.request_id] < a.attempts]
    mine = {a.request_id for a in answers}
    report(name, answered=len(answered), answered_attempts=sum(a.attempts for a in answered),
           rows_of_answered=sum(per_request[a.request_id] for a in answered),
           answered_missing_rows=len(missing),
           missing_answered_within_s_of_kill=round(max((killed_at - a.ended for a in missing), default=0), 3),
           cut_off_by_kill=sum(not a.answered and a.began < killed_at for a in answers),
           rows_of_cut_off=sum(n for rid, n in per_request.items() if rid in mine) - sum(
               per_request[a.request_id] for a in answered),
           spool_left_by_kill=left)
    return missing


def test_sigkill_under_load_loses_no_row_of_an_answered_request_when_durable(database, fakes, service):
    """Killed twice: with the database up (rows committed), then while it is away (rows in the spool)."""
    service.env["LLMRELAY_LEDGER_DURABLE"] = "true"
    service.start()
    fakes["anthropic"].script(faults.overloaded(times=100))  # some answers come from the second link
    for away in (False, True):
        answers, killed_at, left = kill_under_load(service, database, away)
        rows = database.rows()
        mine = {a.request_id for a in answers}
        missing = check(f"sigkill[{database.backend}-durable{'-database-away' if away else ''}]",
                        [r for r in rows if r[1] in mine], answers, killed_at, left)
        assert missing == []


def test_sigkill_under_load_without_durability_loses_only_the_last_flush_interval(database, fakes, service):
    service.start()
    fakes["anthropic"].script(faults.overloaded(times=100))
    answers, killed_at, left = kill_under_load(service, database, away=False)
    missing = check(f"sigkill[{database.backend}-default]", database.rows(), answers, killed_at, left)
    old = [a for a in answers if a.answered and a.ended < killed_at - MARGIN]
    assert old and not [a for a in missing if a in old]
