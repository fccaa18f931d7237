"""Request dependencies: who is calling, and whose data they may see.  (Whether a request is within
the caller's limits is decided by `Relay.run`, for every ingress alike.)"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from ..access.keys import presented_key
from ..access.sessions import api_principal
from ..ledger import Ledger
from ..relay import Relay
from ..types import Principal
from .errors import Problem

_NO_KEY = "an API key is required: send `Authorization: Bearer <key>` (or `x-api-key: <key>`)"


async def key_user(request: Request) -> Principal:
    """The caller by their API key (the /v1 routers: key-only)."""
    key = presented_key(request)
    if key is None:
        raise Problem(401, _NO_KEY, code="missing_api_key", headers={"www-authenticate": "Bearer"})
    return await _key_principal(request, key)


async def current_user(request: Request) -> Principal:
    """The caller by their API key, or (the /api routers) by the web UI's session cookie, with an
    X-CSRF-Token on state-changing requests."""
    key = presented_key(request)
    if key is not None:
        return await _key_principal(request, key)
    principal, why = await api_principal(request)
    if principal is not None:
        request.scope["state"]["user_id"] = principal.user_id
        return principal
    if why == "csrf":
        raise Problem(403, "a request signed in by the session cookie needs the page's X-CSRF-Token header",
                      code="csrf_token_invalid")
    raise Problem(401, _NO_KEY, code="missing_api_key", headers={"www-authenticate": "Bearer"})


async def _key_principal(request: Request, key: str) -> Principal:
    principal = await request.app.state.keys.principal(key)
    if principal is None:
        raise Problem(401, "invalid or revoked API key", code="invalid_api_key", headers={"www-authenticate": "Bearer"})
    request.app.state.keys.used(principal)
    request.scope["state"]["user_id"] = principal.user_id  # (the State wrapper costs more than the call)
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]
KeyUser = Annotated[Principal, Depends(key_user)]


_USER_ID = Query(None, max_length=64, description="Admins only: whose data to read.")


def subject(user: CurrentUser, userId: str | None = _USER_ID) -> str | None:
    """Whose data a read concerns: the caller's own, or (admins) anyone's; None = everyone (admins)."""
    if userId is None:
        return None if user.is_admin else user.user_id
    if userId != user.user_id and not user.is_admin:
        raise Problem(403, "only an admin may read another user's data", field="userId", code="forbidden")
    return userId


Subject = Annotated[str | None, Depends(subject)]


def get_relay(request: Request) -> Relay:
    return request.app.state.relay


def get_ledger(request: Request) -> Ledger:
    return request.app.state.relay.ledger


RelayDep = Annotated[Relay, Depends(get_relay)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]
