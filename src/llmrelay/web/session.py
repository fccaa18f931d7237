"""The pages' side of the web session (`access.sessions` reads and checks the cookie): the signed-in
user of a page, the redirect to /signin, setting and clearing the cookies, and what every template
gets."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from starlette.responses import Response

from ..access.sessions import (
    COOKIE,
    MAX_AGE,
    SIGNIN_COOKIE,
    SIGNIN_MAX_AGE,
    codec,
    csrf_token_for,
    resolve,
    session_from_cookie,
)
from ..types import Principal


class SignInRequired(Exception):
    """Raised by `PageUser`: the app answers with a redirect to /signin?next=<this page>."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def page_user(request: Request) -> Principal | None:
    """The signed-in user of a page request, or None."""
    found = session_from_cookie(request)
    return found.principal if found else None


async def require_page_user(request: Request) -> Principal:
    found = await resolve(request)
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    request.scope["state"]["user_id"] = found.principal.user_id  # for the access log
    return found.principal


PageUser = Annotated[Principal, Depends(require_page_user)]
"""A page's user; without a session the page redirects to /signin?next=<the page>."""


def safe_next(value: str | None) -> str:
    """`value` if it is a path on this site, else "/" (no open redirect: `//evil`, `/\\evil`,
    `https://evil`, control characters and the like all fall back)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 0x20 or c == "\\" for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def signin_url(next_path: str) -> str:
    return "/signin" + ("" if next_path == "/" else "?next=" + quote(safe_next(next_path), safe="/"))


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session(request: Request, response: Response, principal: Principal) -> None:
    response.set_cookie(COOKIE, codec(request).dumps(principal), max_age=MAX_AGE, path="/", httponly=True,
                        samesite="strict", secure=_secure(request))


def clear_session(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request))


def set_signin_cookie(request: Request, response: Response, nonce: str) -> None:
    response.set_cookie(SIGNIN_COOKIE, nonce, max_age=SIGNIN_MAX_AGE, path="/signin", httponly=True,
                        samesite="strict", secure=_secure(request))


def clear_signin_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(SIGNIN_COOKIE, path="/signin", httponly=True, samesite="strict", secure=_secure(request))


def context(request: Request, **ctx: Any) -> dict[str, Any]:
    """What every template gets: `request`, `user` (or None) and `csrf_token`."""
    return {"request": request, "user": page_user(request), "csrf_token": csrf_token_for(request), **ctx}
