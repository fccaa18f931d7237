"""Liveness, readiness and metrics (no key needed)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import JSONResponse, Response

from ..metrics import render

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
async def metrics() -> Response:
    body, ctype = render()
    return Response(body, media_type=ctype)
