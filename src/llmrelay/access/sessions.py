"""The web UI's session, as the API and the pages both read it: a signed, expiring, HttpOnly cookie,
and the CSRF tokens that go with it.  (The pages' own side, sign-in redirects and cookies, is
`web.session`.)

The cookie `llmrelay_session` holds `{"k": key id, "u": user id, "n": nonce}` signed with
itsdangerous (HMAC-SHA256 over the payload and a timestamp) — never the API key itself, so a stolen
cookie cannot be turned into a key, and it dies with the key: every request looks the key id up in
the KeyCache, which drops revoked keys at its next reload (`LLMRELAY_KEY_REFRESH`, 2 s).

CSRF: the cookie is SameSite=Strict already; on top of that every state-changing request made
with the cookie must carry `X-CSRF-Token` (or, for the pages' plain forms, a `csrf_token` field)
equal to an HMAC of the session's nonce.  The page gets the token in
`<meta name="csrf-token">`; a cross-site page can neither read it nor the HttpOnly cookie.

Sign-in has no session yet, so its form uses a double-submit token: GET /signin sets a short-lived
`llmrelay_signin` cookie with a random nonce and puts a signed copy of the nonce in the form; the
POST must bring both, matching.

The secret: `LLMRELAY_SESSION_SECRET`, else `LLMRELAY_HOME/session.secret`, generated once (mode
0600, written to a temporary file and hard-linked into place so that concurrent workers all end
up with the same one).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..config import Settings
from ..types import Principal

COOKIE = "llmrelay_session"
SIGNIN_COOKIE = "llmrelay_signin"
MAX_AGE = 12 * 3600
"""Seconds a session lasts (signing in again starts a new one)."""
SIGNIN_MAX_AGE = 3600
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class WebSession:
    principal: Principal
    nonce: str


def load_secret(settings: Settings) -> bytes:
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value().encode()
    path = Path(settings.home) / "session.secret"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".session.secret.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_urlsafe(48).encode())
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic; fails if another worker got there first, whose secret we then use
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes().strip()


class SessionCodec:
    """Signs and reads the cookies and derives CSRF tokens; one per app (`app.state.web_sessions`)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        sha256 = {"digest_method": hashlib.sha256}
        self._session = URLSafeTimedSerializer(secret, salt="llmrelay.session", signer_kwargs=sha256)
        self._signin = URLSafeTimedSerializer(secret, salt="llmrelay.signin", signer_kwargs=sha256)

    def dumps(self, principal: Principal) -> str:
        return self._session.dumps({"k": principal.key_id, "u": principal.user_id, "n": secrets.token_urlsafe(16)})

    def loads(self, cookie: str) -> dict[str, str] | None:
        try:
            data = self._session.loads(cookie, max_age=MAX_AGE)
        except BadSignature:  # includes SignatureExpired
            return None
        return data if isinstance(data, dict) and {"k", "u", "n"} <= data.keys() else None

    def csrf_token(self, nonce: str) -> str:
        return hmac.new(self._secret, b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()[:40]

    def csrf_ok(self, nonce: str, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf_token(nonce), presented or "")

    def signin_pair(self) -> tuple[str, str]:
        """(cookie value, form value) for the sign-in form's double-submit token."""
        nonce = secrets.token_urlsafe(16)
        return nonce, self._signin.dumps(nonce)

    def signin_ok(self, cookie: str | None, form_value: str | None) -> bool:
        if not cookie or not form_value:
            return False
        try:
            nonce = self._signin.loads(form_value, max_age=SIGNIN_MAX_AGE)
        except BadSignature:
            return False
        return isinstance(nonce, str) and hmac.compare_digest(nonce, cookie)


def codec(request: Request) -> SessionCodec:
    app_state = request.app.state
    found = getattr(app_state, "web_sessions", None)
    if found is None:
        found = app_state.web_sessions = SessionCodec(load_secret(app_state.settings))
    return found


def _cookie(request: Request) -> dict[str, str] | None:
    """The session cookie's payload, if it is there and its signature and age hold."""
    raw = request.cookies.get(COOKIE)
    return codec(request).loads(raw) if raw else None


def _cached(request: Request) -> WebSession | bool | None:
    """The session this request already settled on, or False when it has not looked yet."""
    return request.scope.setdefault("state", {}).get("web_session", False)


def _settle(request: Request, data: dict[str, str] | None) -> WebSession | None:
    found = None
    if data is not None:
        principal = request.app.state.keys.principal_by_key_id(data["k"])
        if principal is not None and principal.user_id == data["u"]:
            found = WebSession(principal, data["n"])
    request.scope["state"]["web_session"] = found
    return found


def session_from_cookie(request: Request) -> WebSession | None:
    """The signed-in session the request's cookie names, if the cookie is valid and its key still
    live, from memory only: request paths `await resolve()` first, the templates then read this."""
    cached = _cached(request)
    return _settle(request, _cookie(request)) if cached is False else cached


async def resolve(request: Request) -> WebSession | None:
    """`session_from_cookie`, after making sure this worker knows the cookie's key (signing in may
    have happened on another worker a moment ago).  The cookie is read and checked once."""
    cached = _cached(request)
    if cached is not False:
        return cached
    data = _cookie(request)
    if data is not None:
        await request.app.state.keys.load_key_id(data["k"])
    return _settle(request, data)


async def api_principal(request: Request) -> tuple[Principal | None, str | None]:
    """For `api.deps.current_user` when no key header came: (the session's principal, None), or
    (None, why not) — "missing" without a session, "csrf" for a state-changing request whose
    X-CSRF-Token is absent or wrong."""
    found = await resolve(request)
    if found is None:
        return None, "missing"
    if request.method not in SAFE_METHODS and not codec(request).csrf_ok(found.nonce,
                                                                          request.headers.get(CSRF_HEADER)):
        return None, "csrf"
    return found.principal, None


def csrf_token_for(request: Request) -> str:
    """The CSRF token of the request's session ('' without one): for `<meta name="csrf-token">`."""
    found = session_from_cookie(request)
    return codec(request).csrf_token(found.nonce) if found else ""
