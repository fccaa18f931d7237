"""Every route of the app × every way of calling it without the right to: no key, a bad key, a revoked
key (as `Authorization: Bearer` and as `x-api-key`), the web session's cookie without (or with a wrong)
CSRF token, and the cookie of a session whose key was revoked since.  Each cell asserts the exact
status and that the refusal is in the route's own error shape; a live key and a session with its token
are the positive controls that make the refusals mean something.

The routes come from the app itself (`routes.served_routes`): a route `routes.ROUTES` does not classify
fails `test_every_route_is_classified` and every cell of its row."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from tests.security.routes import ROUTES, SAFE, Door, request_args, served_routes
from tests.security.world import BASE, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVED = sorted(served_routes(), key=lambda mp: (mp[1], mp[0]))
ROWS = [pytest.param(method, path, id=f"{method} {path}") for method, path in SERVED]
HEADER_STYLES = ["bearer", "x-api-key"]
BAD_KEY = "lr_" + "Q" * 43


def door_of(method: str, path: str) -> Door:
    door = ROUTES.get((method, path))
    if door is None:
        pytest.fail(f"{method} {path} is not classified in tests/security/routes.py: say who may call it")
    return door


def key_header(style: str, key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if style == "bearer" else {"x-api-key": key}


def assert_refused(r, door: Door, status: int, code: str) -> None:
    """`r` is `status` in the error shape of `door`'s router, naming `code`."""
    assert r.status_code == status, (r.status_code, r.text[:300])
    body = r.json()
    if door.kind == "api":
        assert r.headers["content-type"] == "application/problem+json"
        assert body["status"] == status and body["type"].endswith("/" + code) and body["title"] and body["detail"]
    elif door.kind == "openai" or (door.kind == "public" and door.path.startswith("/v1/")):
        assert r.headers["content-type"] == "application/json"
        assert set(body) == {"error"} | ({"endpoints"} if code == "unknown_url" else set())
        assert set(body["error"]) == {"message", "type", "param", "code"} and body["error"]["code"] == code
        assert body["error"]["type"] == {401: "invalid_request_error", 404: "invalid_request_error"}[status]
    elif door.kind == "anthropic":
        assert r.headers["content-type"] == "application/json"
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
        assert body["error"]["type"] == {401: "authentication_error"}[status]
    else:
        raise AssertionError(f"no error shape for a {door.kind} route")
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer"


def assert_signin_redirect(r, door: Door) -> None:
    assert r.status_code == 303, (r.status_code, r.text[:300])
    assert r.headers["location"] == "/signin" + ("" if door.path == "/" else "?next=" + quote(door.path, safe="/"))


def assert_public(r, door: Door) -> None:
    if door.path.startswith("/v1/"):
        assert_refused(r, door, 404, "unknown_url")
    else:
        assert r.status_code == door.ok, (r.status_code, r.text[:300])


def assert_public_signed_in(r, door: Door, method: str) -> None:
    if (method, door.path) == ("GET", "/signin"):  # already signed in: on to the site
        assert r.status_code == 303 and r.headers["location"] == "/"
    else:
        assert_public(r, door)


async def call(matrix, door: Door, method: str, headers: dict[str, str] | None = None, client=None):
    return await (client or matrix.client).request(**request_args(door, method), headers=headers or {})


async def test_every_route_is_classified():
    served = set(served_routes())
    assert not served - ROUTES.keys(), f"unclassified routes: {sorted(served - ROUTES.keys())}"
    assert not ROUTES.keys() - served, f"classified but not served: {sorted(ROUTES.keys() - served)}"


async def test_no_route_serves_users_keys_or_prices():
    """Admin data without a door: users, keys and prices are managed by the CLI only."""
    for _, path in served_routes():
        assert not any(word in path for word in ("/users", "/keys", "/prices")), path


@pytest.mark.parametrize(("method", "path"), ROWS)
async def test_no_credentials(matrix, method, path):
    door = door_of(method, path)
    r = await call(matrix, door, method)
    if door.keyed:
        assert_refused(r, door, 401, "missing_api_key")
    elif door.kind == "page":
        assert_signin_redirect(r, door)
    elif door.kind == "signout":  # nothing to sign out of: back to the form
        assert r.status_code == 303 and r.headers["location"] == "/signin"
    else:
        assert_public(r, door)


@pytest.mark.parametrize("style", HEADER_STYLES)
@pytest.mark.parametrize(("method", "path"), ROWS)
async def test_bad_key(matrix, method, path, style):
    door = door_of(method, path)
    r = await call(matrix, door, method, key_header(style, BAD_KEY))
    if door.keyed:
        assert_refused(r, door, 401, "invalid_api_key")
    elif door.kind == "page":  # a key header never signs a page in
        assert_signin_redirect(r, door)
    elif door.kind == "signout":
        assert r.status_code == 303
    else:
        assert_public(r, door)


@pytest.mark.parametrize("style", HEADER_STYLES)
@pytest.mark.parametrize(("method", "path"), ROWS)
async def test_revoked_key(matrix, method, path, style):
    door = door_of(method, path)
    r = await call(matrix, door, method, key_header(style, matrix.users.revoked))
    if door.keyed:
        assert_refused(r, door, 401, "invalid_api_key")
    elif door.kind == "page":
        assert_signin_redirect(r, door)
    elif door.kind == "signout":
        assert r.status_code == 303
    else:
        assert_public(r, door)


@pytest.mark.parametrize(("method", "path"), ROWS)
async def test_live_key_is_let_in(matrix, method, path):
    """The positive control: alice's live key gets the route's answer (a non-admin's 403 where admins only)."""
    door = door_of(method, path)
    r = await call(matrix, door, method, matrix.users.auth("alice"))
    if door.kind == "page":
        assert_signin_redirect(r, door)
    elif door.kind == "signout":
        assert r.status_code == 303
    elif door.admin_only:
        assert_refused(r, door, 403, "forbidden")
    elif door.kind == "public":
        assert_public(r, door)
    else:
        assert r.status_code == door.ok, (r.status_code, r.text[:300])


@pytest.mark.parametrize("token", ["absent", "wrong"])
@pytest.mark.parametrize(("method", "path"), ROWS)
async def test_session_cookie_without_csrf_token(matrix, method, path, token):
    door = door_of(method, path)
    headers = {"x-csrf-token": "0" * 40} if token == "wrong" else {}
    form = {"csrf_token": "0" * 40} if token == "wrong" else {}
    if door.kind == "signout":
        r = await matrix.alice_session.post(door.path, data=form)
        assert r.status_code == 403 and r.headers["content-type"].startswith("text/plain")
        assert (await matrix.alice_session.get("/")).status_code == 200  # still signed in
        return
    r = await call(matrix, door, method, headers, client=matrix.alice_session)
    if door.kind in ("openai", "anthropic"):  # the cookie never authenticates /v1, CSRF token or not
        assert_refused(r, door, 401, "missing_api_key")
    elif door.kind == "api" and method not in SAFE:
        assert_refused(r, door, 403, "csrf_token_invalid")
    elif door.kind == "api":  # a read needs no token
        assert r.status_code == door.ok, (r.status_code, r.text[:300])
    elif door.kind == "page":
        assert r.status_code == 200 and "alice" in r.text
    else:
        assert_public_signed_in(r, door, method)


@pytest.mark.parametrize(("method", "path"), ROWS)
async def test_session_cookie_with_its_csrf_token_is_let_in(matrix, method, path):
    """The positive control of the cell above: the page's token opens /api (never /v1)."""
    door = door_of(method, path)
    if door.kind == "signout":  # with a session of its own, not to end the shared one
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=matrix.app), base_url=BASE) as bob:
            csrf = await sign_in(bob, matrix.users.keys["bob"])
            r = await bob.post(door.path, data={"csrf_token": csrf})
            assert r.status_code == 303 and r.headers["location"] == "/signin"
            assert (await bob.get("/")).status_code == 303
        return
    r = await call(matrix, door, method, {"x-csrf-token": matrix.csrf}, client=matrix.alice_session)
    if door.kind in ("openai", "anthropic"):
        assert_refused(r, door, 401, "missing_api_key")
    elif door.admin_only:
        assert_refused(r, door, 403, "forbidden")
    elif door.kind == "page":
        assert r.status_code == 200
    elif door.kind == "public":
        assert_public_signed_in(r, door, method)
    else:
        assert r.status_code == door.ok, (r.status_code, r.text[:300])


@pytest.mark.parametrize("cookie", ["revoked", "forged"])
@pytest.mark.parametrize(("method", "path"), ROWS)
async def test_session_of_a_revoked_key_or_forged(matrix, method, path, cookie):
    """Carol signed in, then her key was revoked: her cookie (still validly signed) opens nothing; nor
    does a cookie naming alice's live key signed with another secret."""
    door = door_of(method, path)
    client = matrix.revoked_session if cookie == "revoked" else matrix.forged_session
    r = await call(matrix, door, method, client=client)
    if door.keyed:
        assert_refused(r, door, 401, "missing_api_key")
    elif door.kind == "page":
        assert_signin_redirect(r, door)
    elif door.kind == "signout":
        assert r.status_code == 303
    else:
        assert_public(r, door)


async def test_a_csrf_token_belongs_to_its_session(matrix, new_session):
    """Alice's page token does not open bob's session (it is an HMAC of the session's own nonce)."""
    bob = await new_session("bob")
    body = {"agentId": "local-agent", "primaryProvider": "ollama", "primaryModel": "mistral"}
    r = await bob.post("/api/ai/config", json=body, headers={"x-csrf-token": matrix.csrf})
    assert_refused(r, ROUTES[("POST", "/api/ai/config")], 403, "csrf_token_invalid")
    r = await bob.post("/signout", data={"csrf_token": matrix.csrf})
    assert r.status_code == 403
