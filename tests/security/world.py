"""What the security tests share beside their fixtures: the marked secrets, and signing in as a browser does."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import update

from llmrelay.db.models import ApiKey
from llmrelay.db.types import utcnow
from llmrelay.db.users import revoke_key

BASE = "http://llmrelay.test"
PROVIDER_SECRETS = {
    "openai": "sk-SECRET-openai-7f3a9c1e5b2d",
    "anthropic": "sk-ant-SECRET-anthropic-2d8e4f6a",
    "google": "gkey-SECRET-google-5e1d0c9b8a7f",  # no well-known key shape: only `register_secret` catches it
    "openrouter": "sk-or-v1-SECRET-openrouter-9a7c3b1d",
}
SESSION_SECRET = "SECRET-session-signing-4c2a8e6f0b9d1357"



def form_field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no field {name!r} in the page"
    return found.group(1)


def meta_csrf(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]*)"', html)
    assert found, "no csrf-token meta in the page"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, key: str) -> str:
    """Signs `client` in through the form, as a browser would; returns the page's CSRF token."""
    page = await client.get("/signin")
    assert page.status_code == 200, page.text
    r = await client.post("/signin", data={"key": key, "signin_token": form_field(page.text, "signin_token"),
                                           "next": "/"})
    assert r.status_code == 303, r.text
    return meta_csrf((await client.get("/")).text)


async def revoke(app, key: str) -> None:
    """`llmrelay keys revoke <key>`'s code path, then the reload every worker does within LLMRELAY_KEY_REFRESH."""
    async with app.state.relay.ledger.sessions() as s, s.begin():
        await revoke_key(s, key)
    await app.state.keys.reload()


async def revoke_all_of(app, user_id: str) -> None:
    async with app.state.relay.ledger.sessions() as s, s.begin():
        await s.execute(update(ApiKey).where(ApiKey.user_id == user_id).values(revoked_at=utcnow()))
    await app.state.keys.reload()
