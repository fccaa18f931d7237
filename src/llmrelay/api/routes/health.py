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


@router.get("/readyz", summary="The database answers", responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> Response:
    relay = request.app.state.relay
    try:
        async with asyncio.timeout(2), relay.ledger.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means not ready; say which
        return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ready", "database": "ok", "ledgerBacklog": relay.ledger.recorder.pending})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    body, ctype = render()
    relay = request.app.state.relay
    body += render_degraded(getattr(relay.guard, "degraded", False))
    budgets = relay.budgets
    if budgets is not None:
        try:
            async with asyncio.timeout(2):
                body += render_budgets(await budgets.status())
        except Exception as exc:  # the other metrics still go out
            log.warning("budget metrics unavailable: %s", type(exc).__name__)
    return Response(body, media_type=ctype)
