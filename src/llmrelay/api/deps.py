"""Request dependencies: who is calling, within their limits, and whose data they may see."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from ..db.users import Principal
from ..ledger import Ledger
from ..relay import Relay
from ..web.session import api_principal
from .auth import presented_key
from .errors import Problem


async def current_user(request: Request) -> Principal:
    key = presented_key(request)
    if key is None:
        return await _session_user(request)
    principal = await request.app.state.keys.principal(key)
    if principal is None:
        raise Problem(401, "invalid or revoked API key", code="invalid_api_key", headers={"www-authenticate": "Bearer"})
    request.app.state.keys.used(principal)
    request.scope["state"]["user_id"] = principal.user_id  # (the State wrapper costs more than the call)
    return principal


async def _session_user(request: Request) -> Principal:
    """No key header: the web UI's session cookie may stand in for a key on /api (never on /v1, which
    stays key-only), with an X-CSRF-Token on state-changing requests."""
    if not request.scope["path"].startswith("/v1/"):
        principal, why = await api_principal(request)
        if principal is not None:
            request.scope["state"]["user_id"] = principal.user_id
            return principal
        if why == "csrf":
            raise Problem(403, "a request signed in by the session cookie needs the page's X-CSRF-Token header",
                          code="csrf_token_invalid")
    raise Problem(401, "an API key is required: send `Authorization: Bearer <key>` (or `x-api-key: <key>`)",
                  code="missing_api_key", headers={"www-authenticate": "Bearer"})


CurrentUser = Annotated[Principal, Depends(current_user)]


async def admitted_user(request: Request, user: CurrentUser) -> Principal:
    """The caller, counted against their rate limits (429 with Retry-After when over)."""
    over = await request.app.state.limits.admit(user)
    if over is not None:
        which, wait = over
        raise Problem(429, f"rate limit reached ({which}); retry in {wait} s", code="rate_limit_exceeded",
                      headers={"retry-after": str(wait)})
    return user


AdmittedUser = Annotated[Principal, Depends(admitted_user)]


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
