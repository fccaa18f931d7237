"""The HTTP service in-process (as tests/api/conftest.py has it) with no retries and short timeouts, a
fresh SQLite ledger per cell, one user's key, and the session's record of every cell's outcome: written as
JSON to $LLMRELAY_FAULT_MATRIX_OUT when that is set (read at start-up: the tests' own environment is
cleaned), for `python -m tests.faults.render_table`.  Each cell's ledger is a copy of one migrated at the
start of the session: migrating 150 times would be a third of the matrix's time."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from llmrelay.api import create_app
from llmrelay.config import load_settings
from llmrelay.db.users import create_key, create_user
from llmrelay.testing import FakeServers

OUT = os.environ.pop("LLMRELAY_FAULT_MATRIX_OUT", None)
"""Taken out of the environment: llmrelay's settings refuse an LLMRELAY_* variable they do not know."""


@pytest.fixture(scope="session")
def matrix_record():
    """cell id -> the observed outcome (`Seen` as a dict), filled by the cells that ran."""
    record: dict[str, dict] = {}
    yield record
    if OUT and record:  # a partial run writes a partial record, which render_table refuses
        Path(OUT).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


@pytest.fixture(scope="package")
def matrix_fakes():
    with FakeServers() as fakes:
        yield fakes


@pytest.fixture(scope="session")
def migrated_home(tmp_path_factory) -> Path:
    """A home whose SQLite ledger is migrated to the head (the app's start-up does it)."""
    home = tmp_path_factory.mktemp("faults") / "home"

    async def start_once() -> None:
        app = create_app(load_settings(env_file=None, home=home, database_url=f"sqlite:///{home / 'llmrelay.db'}"))
        async with app.router.lifespan_context(app):
            pass

    with pytest.MonkeyPatch.context() as mp, ThreadPoolExecutor(1) as pool:  # a loop of its own
        for name in [n for n in os.environ if n.upper().startswith("LLMRELAY_")]:
            mp.delenv(name)  # no setting of the developer's may point this elsewhere
        pool.submit(asyncio.run, start_once()).result()
    return home


@pytest.fixture
def fakes(matrix_fakes):
    matrix_fakes.reset()
    for fake in matrix_fakes.fakes.values():
        fake.models = None
    yield matrix_fakes
    matrix_fakes.reset()


@pytest.fixture
def settings(fakes, monkeypatch, tmp_path, migrated_home):
    home = tmp_path / "home"
    home.mkdir()
    for db in migrated_home.glob("llmrelay.db*"):
        shutil.copy(db, home / db.name)
    for var, value in fakes.env().items():
        monkeypatch.setenv(var, value)
    return load_settings(env_file=None, home=home, max_retries=0, first_token_timeout=0.5,
                         idle_timeout=2.0, connect_timeout=1.0)


@pytest.fixture
async def app(settings):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def key(app) -> str:
    async with app.state.relay.ledger.sessions() as s, s.begin():
        user = await create_user(s, "alice")
        made, _ = await create_key(s, user)
    return made


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://llmrelay.test") as c:
        yield c
