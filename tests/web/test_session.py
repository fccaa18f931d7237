"""Sign-in, the session cookie and CSRF, in-process (no browser): what the cookie carries and how
it is flagged, that it authenticates /api but never /v1, that state-changing calls need the
page's CSRF token, that revoking the key ends the session, and that `next` cannot leave the site."""

from __future__ import annotations

import asyncio

import helpers
import pytest
from helpers import form_field, meta_csrf, sign_in
from sqlalchemy import update

from llmrelay.db.models import ApiKey
from llmrelay.db.types import utcnow
from llmrelay.web.session import COOKIE, safe_next

web_fakes, inproc_app, inproc_keys, inproc_client = (helpers.web_fakes, helpers.inproc_app, helpers.inproc_keys,
                                                     helpers.inproc_client)


async def test_sign_in_sets_a_signed_httponly_strict_cookie_without_the_key(inproc_client, inproc_keys):
    r = await sign_in(inproc_client, inproc_keys.alice)
    assert r.status_code == 303 and r.headers["location"] == "/"
    set_cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith(COOKIE + "="))
    flags = {p.strip().split("=")[0].lower() for p in set_cookie.split(";")}
    assert {"httponly", "max-age", "path"} <= flags and "samesite=strict" in set_cookie.lower()
    assert "secure" not in flags  # plain http here; https requests get Secure
    value = inproc_client.cookies[COOKIE]
    assert inproc_keys.alice not in value and inproc_keys.alice[3:15] not in value
    page = await inproc_client.get("/")
    assert page.status_code == 200 and "alice" in page.text and len(meta_csrf(page.text)) >= 32
    assert inproc_keys.alice not in page.text


async def test_a_bad_key_shows_an_error_on_the_page(inproc_client, inproc_keys):
    r = await sign_in(inproc_client, "lr_not-a-key")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "not valid" in r.text and COOKIE not in inproc_client.cookies


async def test_sign_in_without_its_form_token_is_refused(inproc_client, inproc_keys):
    r = await inproc_client.post("/signin", data={"key": inproc_keys.alice, "signin_token": "forged"})
    assert r.status_code == 200 and "expired" in r.text and COOKIE not in inproc_client.cookies


async def test_pages_redirect_to_sign_in_with_next(inproc_client, inproc_keys):
    r = await inproc_client.get("/agents/general-agent")
    assert r.status_code == 303 and r.headers["location"] == "/signin?next=/agents/general-agent"
    r = await sign_in(inproc_client, inproc_keys.alice, "/agents/general-agent")
    assert r.status_code == 303 and r.headers["location"] == "/agents/general-agent"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example",
                                    "javascript:alert(1)", "evil", "/ok\r\nset-cookie: x=1", ""])
def test_next_never_leaves_the_site(target):
    assert safe_next(target) == "/"


async def test_open_redirect_refused_through_the_form(inproc_client, inproc_keys):
    r = await sign_in(inproc_client, inproc_keys.alice, "//evil.example/")
    assert r.headers["location"] == "/"


async def test_cookie_authenticates_api_reads_and_csrf_guards_writes(inproc_client, inproc_keys):
    assert (await inproc_client.get("/api/ai/agents")).status_code == 401
    await sign_in(inproc_client, inproc_keys.alice)
    assert (await inproc_client.get("/api/ai/agents")).status_code == 200
    body = {"agentId": "local-agent", "primaryProvider": "ollama", "primaryModel": "llama3.2"}
    r = await inproc_client.post("/api/ai/config", json=body)
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    r = await inproc_client.post("/api/ai/config", json=body, headers={"x-csrf-token": "0" * 40})
    assert r.status_code == 403
    token = meta_csrf((await inproc_client.get("/")).text)
    r = await inproc_client.post("/api/ai/config", json=body, headers={"x-csrf-token": token})
    assert r.status_code == 200 and r.json()["primaryModel"] == "llama3.2"
    r = await inproc_client.delete("/api/ai/config/local-agent", headers={"x-csrf-token": token})
    assert r.status_code == 204


async def test_the_openai_endpoints_ignore_the_cookie(inproc_client, inproc_keys):
    await sign_in(inproc_client, inproc_keys.alice)
    assert (await inproc_client.get("/v1/models")).status_code == 401
    r = await inproc_client.post("/v1/chat/completions", json={"model": "agent:local-agent",
                                                                "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 401


async def test_a_key_header_wins_over_the_cookie(inproc_client, inproc_keys):
    await sign_in(inproc_client, inproc_keys.alice)
    r = await inproc_client.get("/api/ai/usage", params={"userId": "x"},
                                headers={"authorization": f"Bearer {inproc_keys.admin}"})
    assert r.status_code == 200  # only an admin may pass another userId: the header's user answered


async def test_revoking_the_key_ends_the_session(inproc_app, inproc_client, inproc_keys):
    await sign_in(inproc_client, inproc_keys.alice)
    assert (await inproc_client.get("/")).status_code == 200
    async with inproc_app.state.relay.ledger.sessions() as s, s.begin():
        await s.execute(update(ApiKey).values(revoked_at=utcnow()).where(ApiKey.prefix == inproc_keys.alice[:11]))
    for _ in range(50):  # the key cache reloads every 0.2 s here
        await asyncio.sleep(0.1)
        if (await inproc_client.get("/")).status_code == 303:
            break
    assert (await inproc_client.get("/")).headers["location"] == "/signin"
    assert (await inproc_client.get("/api/ai/agents")).status_code == 401


async def test_a_tampered_cookie_is_no_session(inproc_client, inproc_keys):
    await sign_in(inproc_client, inproc_keys.alice)
    value = inproc_client.cookies[COOKIE]
    inproc_client.cookies.set(COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"),
                              domain="llmrelay.test")
    assert (await inproc_client.get("/")).status_code == 303


async def test_sign_out_needs_the_token_and_clears_the_cookie(inproc_client, inproc_keys):
    await sign_in(inproc_client, inproc_keys.alice)
    page = await inproc_client.get("/")
    assert (await inproc_client.post("/signout", data={"csrf_token": "nope"})).status_code == 403
    r = await inproc_client.post("/signout", data={"csrf_token": form_field(page.text, "csrf_token")})
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    assert (await inproc_client.get("/")).status_code == 303


async def test_session_secret_is_generated_once_with_mode_0600(inproc_app, inproc_client, inproc_keys):
    await sign_in(inproc_client, inproc_keys.alice)
    path = inproc_app.state.settings.home / "session.secret"
    assert path.stat().st_mode & 0o777 == 0o600 and len(path.read_bytes()) >= 32


async def test_a_session_signed_in_on_one_worker_is_good_on_another_that_has_not_reloaded_its_keys(
        inproc_app, inproc_client, tmp_path):
    """With several workers a person signs in on one; the next request may land on a worker whose
    key cache predates the key (it reloads every few seconds): it looks the key up once."""
    import httpx

    from llmrelay.api.app import create_app
    from llmrelay.config import load_settings
    from llmrelay.db.users import create_key, create_user

    other = create_app(load_settings(env_file=None, max_retries=0, home=tmp_path / "home", key_refresh=300))
    async with other.router.lifespan_context(other):  # its keys are loaded now, before the key exists
        async with inproc_app.state.relay.ledger.sessions() as s, s.begin():
            key, _ = await create_key(s, await create_user(s, "bob"))
        assert (await sign_in(inproc_client, key)).status_code == 303
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url=str(inproc_client.base_url),
                                     cookies=inproc_client.cookies) as second:
            page = await second.get("/")
            assert page.status_code == 200 and "bob" in page.text
            assert (await second.get("/api/ai/config")).status_code == 200
            async with inproc_app.state.relay.ledger.sessions() as s, s.begin():
                await s.execute(update(ApiKey).values(revoked_at=utcnow()))
            await other.state.keys.reload()
            assert (await second.get("/")).status_code == 303  # revoked: signed out there too
