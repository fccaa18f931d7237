"""The HTTP service in-process: the FastAPI app over httpx's ASGI transport, its lifespan run,
the providers at the fakes, a fresh SQLite ledger per test, and a few users with keys."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from llmrelay.api import create_app
from llmrelay.config import load_settings
from llmrelay.db.users import create_key, create_user
from llmrelay.testing import FakeServers


@pytest.fixture(scope="package")
def api_fakes():
    with FakeServers() as fakes:
        yield fakes


@pytest.fixture
def fakes(api_fakes):
    api_fakes.reset()
    for fake in api_fakes.fakes.values():
        fake.models = None
    yield api_fakes
    api_fakes.reset()


@pytest.fixture
def settings_overrides():
    """Override in a test module to change settings (by field name)."""
    return {}


@pytest.fixture
def settings(fakes, monkeypatch, tmp_path, settings_overrides):
    for var, value in fakes.env().items():
        monkeypatch.setenv(var, value)
    overrides = {"max_retries": 0, "home": tmp_path / "home", **settings_overrides}
    return load_settings(env_file=None, **overrides)


@dataclass
class Keys:
    admin: str
    alice: str
    bob: str

    def auth(self, who: str) -> dict[str, str]:
        return {"authorization": f"Bearer {getattr(self, who)}"}


@pytest.fixture
async def app(settings):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def keys(app):
    async with app.state.relay.ledger.sessions() as s, s.begin():
        made = {}
        for name, admin in (("admin", True), ("alice", False), ("bob", False)):
            user = await create_user(s, name, is_admin=admin)
            made[name], _ = await create_key(s, user)
    return Keys(**made)


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://llmrelay.test") as c:
        yield c

