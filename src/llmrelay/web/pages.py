"""The pages of part A: sign-in and sign-out, and the agents page (list, chat, model selector, chain
editor).  The pages are thin: the data comes from the JSON API, which the browser calls with the
session cookie (see `session`)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, Path, Request
from starlette.responses import RedirectResponse, Response

from . import session
from .session import PageUser, SignInRequired
from .templating import render

router = APIRouter(include_in_schema=False)
MAX_FORM = 16 * 1024


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form (no multipart parser needed for three fields)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {}
    body = await request.body()
    if len(body) > MAX_FORM:
        return {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def _signin_page(request: Request, next_path: str, error: str | None = None) -> Response:
    """The form, with a fresh double-submit token.  A refused key answers 200 with the message: a
    page for a person, not an API error (and no console noise)."""
    codec = session.codec(request)
    cookie, token = codec.signin_pair()
    response = render(request, "signin.html", next=next_path, signin_token=token, error=error)
    session.set_signin_cookie(request, response, cookie)
    return response


@router.get("/signin")
async def signin_form(request: Request, next: str | None = None) -> Response:
    target = session.safe_next(next)
    if await session.resolve(request) is not None:
        return RedirectResponse(target, 303)
    return _signin_page(request, target)


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await _form(request)
    target = session.safe_next(form.get("next"))
    codec = session.codec(request)
    if not codec.signin_ok(request.cookies.get(session.SIGNIN_COOKIE), form.get("signin_token")):
        return _signin_page(request, target, "The sign-in form expired. Please paste your key again.")
    key = form.get("key", "").strip()
    principal = await request.app.state.keys.principal(key) if key else None
    if principal is None:
        return _signin_page(request, target, "That API key is not valid (or was revoked).")
    request.app.state.keys.used(principal)
    response = RedirectResponse(target, 303)
    session.set_session(request, response, principal)
    session.clear_signin_cookie(request, response)
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    found = await session.resolve(request)
    form = await _form(request)
    if found is not None and not session.codec(request).csrf_ok(found.nonce, form.get("csrf_token")):
        return Response("CSRF token missing or wrong: sign out from the page's button.", 403,
                        media_type="text/plain")
    response = RedirectResponse("/signin", 303)
    session.clear_session(request, response)
    return response


@router.get("/")
async def agents_page(request: Request, user: PageUser) -> Response:
    return render(request, "agents.html", agent_id=None)


@router.get("/agents/{agent_id}")
async def agent_page(request: Request, user: PageUser,
                     agent_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Response:
    return render(request, "agents.html", agent_id=agent_id)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def _to_signin(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(session.signin_url(exc.next_path), 303)
