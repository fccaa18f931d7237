"""In-process fixtures for the web UI's server side (sign-in, session cookie, CSRF): the app over
httpx's ASGI transport, like tests/api, without a browser.  Import them into a test module:
`from helpers import inproc_app, inproc_client, inproc_keys, web_fakes  # noqa: F401`."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import pytest

from llmrelay.api import create_app
from llmrelay.config import load_settings
from llmrelay.db.users import create_key, create_user
from llmrelay.testing import FakeServers

BASE = "http://llmrelay.test"


@pytest.fixture(scope="module")
def web_fakes():
    with FakeServers() as fakes:
        yield fakes


@pytest.fixture
async def inproc_app(web_fakes, monkeypatch, tmp_path):
    web_fakes.reset()
    for var, value in web_fakes.env().items():
        monkeypatch.setenv(var, value)
    settings = load_settings(env_file=None, max_retries=0, home=tmp_path / "home", key_refresh=0.2)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@dataclass
class Keys:
    admin: str
    alice: str


@pytest.fixture
async def inproc_keys(inproc_app) -> Keys:
    async with inproc_app.state.relay.ledger.sessions() as s, s.begin():
        made = {}
        for name, admin in (("admin", True), ("alice", False)):
            user = await create_user(s, name, is_admin=admin)
            made[name], _ = await create_key(s, user)
    return Keys(**made)


@pytest.fixture
async def inproc_client(inproc_app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=inproc_app), base_url=BASE) as c:
        yield c


def form_field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no field {name!r} in the page"
    return found.group(1)


def meta_csrf(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]*)"', html)
    assert found, "no csrf-token meta in the page"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, key: str, next_path: str | None = None) -> httpx.Response:
    """GET /signin then POST the form, as a browser would (the client keeps the cookies)."""
    page = await client.get("/signin" + (f"?next={next_path}" if next_path else ""))
    assert page.status_code == 200, page.text
    return await client.post("/signin", data={"key": key, "signin_token": form_field(page.text, "signin_token"),
                                              "next": form_field(page.text, "next")})


@pytest.fixture(scope="module")
def server_without_openai(live_server, tmp_path_factory):
    """A second `llmrelay serve` on the same fakes with OPENAI_API_KEY unset (OpenAI disabled, with
    its reason), and its own home; yields (url, admin key)."""
    from tests.servers import Server

    workdir = tmp_path_factory.mktemp("web-no-openai")
    env = {k: v for k, v in live_server.env.items() if k != "OPENAI_API_KEY"}
    server = Server({**env, "LLMRELAY_HOME": str(workdir / "home")}, workdir)
    try:
        yield server.url, server.stdout.split("admin api key: ")[1].split()[0]
    finally:
        server.kill()
