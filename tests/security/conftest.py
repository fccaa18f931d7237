"""The security matrix's world: the app in-process over httpx's ASGI transport (its lifespan run), a
real SQLite ledger under tmp_path, the providers at the fakes with marked secret keys, and the users
admin, alice and bob with keys (alice also has a revoked one)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import httpx
import pytest
import pytest_asyncio

from llmrelay.access.sessions import COOKIE, SessionCodec
from llmrelay.api import create_app
from llmrelay.config import load_settings
from llmrelay.db.users import create_key, create_user
from llmrelay.testing import FakeServers
from tests.security.world import BASE, PROVIDER_SECRETS, SESSION_SECRET, revoke, sign_in


@pytest.fixture(scope="package")
def sec_fakes():
    with FakeServers() as fakes:
        for name, secret in PROVIDER_SECRETS.items():
            fakes.fakes[name].api_key = secret  # the fake refuses any other key, and env() hands this one out
        yield fakes


@pytest.fixture
def fakes(sec_fakes):
    sec_fakes.reset()
    yield sec_fakes
    sec_fakes.reset()


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def settings(fakes, monkeypatch, home):
    for var, value in fakes.env().items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("LLMRELAY_SESSION_SECRET", SESSION_SECRET)
    return load_settings(env_file=None, max_retries=0, home=home)


@pytest.fixture
async def app(settings):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@dataclass
class Users:
    """Every user's key, id and (alice) a revoked key."""

    keys: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    revoked: str = ""

    def auth(self, who: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[who]}"}


async def _make_users(app, *who: tuple[str, bool]) -> Users:
    made = Users()
    async with app.state.relay.ledger.sessions() as s, s.begin():
        for name, admin in who:
            user = await create_user(s, name, is_admin=admin)
            made.keys[name], _ = await create_key(s, user, "laptop")
            made.ids[name] = user.id
            if name == "alice":
                made.revoked, _ = await create_key(s, user, "old")
    await revoke(app, made.revoked)
    return made


@pytest.fixture
async def users(app) -> Users:
    return await _make_users(app, ("admin", True), ("alice", False), ("bob", False))


@pytest.fixture
async def client(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


@pytest.fixture
def new_client(app):
    """A further client of the same app (its own cookie jar): `async with new_client() as c`."""
    return lambda: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


@dataclass
class Matrix:
    """One app for a whole module of cells: alice (live key, and a revoked one), admin, a client signed in
    as alice with her page's CSRF token, and one whose session's key has since been revoked."""

    app: object
    users: Users
    client: httpx.AsyncClient
    alice_session: httpx.AsyncClient
    csrf: str
    revoked_session: httpx.AsyncClient
    forged_session: httpx.AsyncClient


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def matrix(sec_fakes, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.upper().startswith("LLMRELAY_"):
                mp.delenv(name)
        for var, value in sec_fakes.env().items():
            mp.setenv(var, value)
        mp.setenv("LLMRELAY_SESSION_SECRET", SESSION_SECRET)
        home = tmp_path_factory.mktemp("matrix") / "home"
        app = create_app(load_settings(env_file=None, max_retries=0, home=home))
        async with app.router.lifespan_context(app):
            made = await _make_users(app, ("admin", True), ("alice", False), ("bob", False), ("carol", False))
            clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) for _ in range(4)]
            plain, alice, carol, forged = clients
            csrf = await sign_in(alice, made.keys["alice"])
            await sign_in(carol, made.keys["carol"])
            await revoke(app, made.keys["carol"])
            # alice's live key id and user id, signed with another secret
            forged.cookies.set(COOKIE, SessionCodec(b"not-the-secret").dumps(
                await app.state.keys.principal(made.keys["alice"])))
            yield Matrix(app, made, plain, alice, csrf, carol, forged)
            for c in clients:
                await c.aclose()


@pytest_asyncio.fixture(loop_scope="module")
async def new_session(matrix):
    """`await new_session("bob")`: a client of the matrix's app signed in as that user."""
    made = []

    async def make(who: str) -> httpx.AsyncClient:
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=matrix.app), base_url=BASE)
        made.append(c)
        await sign_in(c, matrix.users.keys[who])
        return c

    yield make
    for c in made:
        await c.aclose()
