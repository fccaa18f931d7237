"""`/api/ai/audit`: the audit log of admin actions (admins only).

    GET /api/ai/audit?limit=&action=    the newest entries first: who, what, on what, the new values, from where

`limit` is 1 to 1000 (default 50); `action` one of `db.audit.ACTIONS`.  Nothing secret is in a row
(keys by their prefix only; URLs without query or credentials), but who changed what is admin data.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from ...db.audit import MAX_LIMIT, ActionName, recent
from ..deps import CurrentUser, LedgerDep
from ..errors import ApiRoute, Problem

router = APIRouter(prefix="/api/ai", tags=["audit"], route_class=ApiRoute)


_LIMIT = Query(50, ge=1, le=MAX_LIMIT, description="At most this many entries")
_ACTION = Query(None, description="Only this action")


class AuditEntryOut(BaseModel):
    id: int
    at: str = Field(description="When (UTC, ISO 8601)")
    actor: str = Field(description="A user id (the API), or `cli:<os user>` (the command line)")
    action: ActionName
    target: str = Field(description="A user name, a key's prefix, a budget's scope, `provider/model`, a provider")
    details: dict[str, Any] = Field(description="The new values (money as decimal strings)")
    source: Literal["cli", "api"]


class AuditList(BaseModel):
    entries: list[AuditEntryOut]


@router.get("/audit", summary="The audit log of admin actions, newest first (admins)", response_model=AuditList,
            responses={403: {"description": "Not an admin"}})
async def list_audit(user: CurrentUser, ledger: LedgerDep, limit: int = _LIMIT,
                     action: ActionName | None = _ACTION) -> Response:
    if not user.is_admin:
        raise Problem(403, "only an admin may read the audit log", code="forbidden")
    async with ledger.sessions() as s:
        entries = await recent(s, limit, action)
    return Response(orjson.dumps({"entries": entries}), media_type="application/json")
