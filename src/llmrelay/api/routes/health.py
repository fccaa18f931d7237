"""Liveness, readiness and metrics (no key needed)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import JSONResponse, Response

from ..metrics import render, render_budgets, render_degraded

log = logging.getLogger("llmrelay.api")
router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="This replica can serve (200 ready or degraded; 503 it cannot)",
            responses={503: {"description": "Not ready: the database is away and the ledger cannot spool"}})
async def readyz(request: Request) -> Response:
    """`ready`: the database answers and takes the ledger's rows.  `degraded` (still 200: keep sending
    traffic): the database does not answer, or the ledger cannot write to it (a locked SQLite file still
    answers SELECT 1), but the rows go to the local spool and will be replayed; requests are served as
    usual (keys, users and prices are held in memory).  503 `unavailable`: the database is away and the
    rows could not be kept either (the spool directory is not writable, its disk is full, or the ledger
    writer is not running), or that writer is not running at all."""
    relay = request.app.state.relay
    recorder = relay.ledger.recorder
    away = None
    try:
        async with asyncio.timeout(2), relay.ledger.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means the database is away; say which
        away = type(getattr(exc, "orig", None) or exc).__name__
    away = away or recorder.spooling
    counts = {"ledgerBacklog": recorder.pending, "spooled": recorder.spooled, "replayed": recorder.replayed}
    if away is None and recorder.running:
        return JSONResponse({"status": "ready", "database": "ok", "ledger": "database", **counts})
    problem = recorder.spool_problem() if away is not None else "writer-stopped"
    if problem is None:
        return JSONResponse({"status": "degraded", "database": away, "ledger": "spooling", **counts})
    return JSONResponse({"status": "unavailable", "database": away or "ok", "ledger": problem, **counts},
                        status_code=503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    body, ctype = render()
    relay = request.app.state.relay
    shared = relay.shared_breaker
    body += render_degraded(getattr(relay.guard, "degraded", False), shared is not None and shared.degraded)
    budgets = relay.budgets
    if budgets is not None:
        try:
            async with asyncio.timeout(2):
                body += render_budgets(await budgets.status())
        except Exception as exc:  # the other metrics still go out
            log.warning("budget metrics unavailable: %s", type(exc).__name__)
    return Response(body, media_type=ctype)
