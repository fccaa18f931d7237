"""`llmrelay serve` as a real process under steady load while its database goes away, or while it is killed.

Each test gets a database of its own, so that counts are exact: SQLite, a file in the test's folder; PostgreSQL,
a fresh database on the shared server (LLMRELAY_TEST_PG), created for the test and dropped after it, reached
through `TcpProxy` so that the test can take it away without stopping the server other tests use.

The figures each test prints (answers, attempts, rows; run with -s to see them) are also appended, one JSON
line per test, to the file LLMRELAY_TEST_OUTAGE_LOG names, when it is set."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from llmrelay.testing import FakeServers
from tests.dbfixtures import PG_ADMIN, _admin, _run
from tests.outages.load import AGENTS_TOML
from tests.outages.outage import SqliteLock, TcpProxy
from tests.servers import Server, wait_for

LOG = os.environ.get("LLMRELAY_TEST_OUTAGE_LOG")
"""Read at import: every test's environment is cleaned of LLMRELAY_* variables (tests/conftest.py)."""


@dataclass
class Database:
    backend: str
    url: str
    """What llmrelay is told (for PostgreSQL: the proxy's port)."""
    direct: str
    """Where the test reads the rows (for PostgreSQL: the server itself)."""
    outage: SqliteLock | TcpProxy

    def down(self) -> None:
        self.outage.down()

    def up(self) -> None:
        self.outage.up()

    def rows(self) -> list[tuple[str, str, int, int]]:
        """Every ledger row's (id as 32 hex digits, request id, attempt number, when it was inserted): SQLite's
        rowid (a table only ever appended to numbers its rows in insertion order); PostgreSQL's xmin, the id of
        the transaction that inserted it (each batch is one transaction; xids grow)."""
        if self.backend == "sqlite":
            with sqlite3.connect(make_url(self.url).database) as conn:
                found = conn.execute(
                    "SELECT id, request_id, attempt, rowid FROM ai_model_usage ORDER BY rowid").fetchall()
        else:
            found = asyncio.run(_pg_rows(self.direct))
        return [(uuid.UUID(str(i)).hex, rid, n, when) for i, rid, n, when in found]


async def _pg_rows(dsn: str) -> list[tuple]:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return [tuple(r) for r in await conn.fetch(
            "SELECT id, request_id, attempt, xmin::text::bigint AS tx FROM ai_model_usage ORDER BY tx, ctid")]
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> Iterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        yield Database("sqlite", f"sqlite+aiosqlite:///{path}", str(path), SqliteLock(str(path)))
        return
    import asyncpg

    name = f"llmrelay_outage_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        _run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL not reachable ({type(exc).__name__}: {exc}); set LLMRELAY_TEST_PG or start it")
    admin = make_url(PG_ADMIN.replace("postgresql+asyncpg://", "postgresql://"))
    with TcpProxy(admin.host or "127.0.0.1", admin.port or 5432) as proxy:
        url = admin.set(drivername="postgresql", port=proxy.port, database=name).render_as_string(hide_password=False)
        direct = admin.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
        yield Database("postgresql", url, direct, proxy)
    _run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def fakes() -> Iterator[FakeServers]:
    with FakeServers() as it:
        yield it


@dataclass
class Service:
    """`llmrelay serve` (one worker) on a database, restartable on the same home and database."""

    work: Path
    env: dict[str, str]
    servers: list[Server] = field(default_factory=list)
    key: str = ""

    @property
    def server(self) -> Server:
        return self.servers[-1]

    @property
    def spool(self) -> Path:
        return self.work / "home" / "spool"

    def start(self) -> Server:
        server = Server(self.env, self.work)
        self.servers.append(server)
        if not self.key:
            self.key = server.stdout.split("admin api key: ")[1].split()[0]
        return server

    def ready(self) -> dict:
        r = self.server.fresh("GET", "/readyz", timeout=10)
        return {"http": r.status_code, **r.json()}

    def spool_files(self) -> list[str]:
        """What waits in the spool (rejected rows and the readiness probe's scratch file aside)."""
        return sorted(p.name for p in self.spool.iterdir()
                      if p.name != "rejected.ndjson" and not p.name.startswith(".")) if self.spool.is_dir() else []


@pytest.fixture
def service(database, fakes, tmp_path) -> Iterator[Service]:
    """Not started: a test sets `env` (e.g. LLMRELAY_LEDGER_DURABLE) and calls `start()`."""
    (tmp_path / "agents.toml").write_text(AGENTS_TOML)
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("LLMRELAY_", "PROMETHEUS_")) and not k.endswith(("_API_KEY", "_BASE_URL"))}
    env = {**base, **fakes.env(), "LLMRELAY_HOME": str(tmp_path / "home"), "LLMRELAY_MAX_RETRIES": "0",
           "LLMRELAY_AGENTS_FILE": str(tmp_path / "agents.toml"), "LLMRELAY_RATE_RPM": "0", "LLMRELAY_RATE_TPM": "0",
           "LLMRELAY_DATABASE_URL": database.url, "LLMRELAY_BREAKER_THRESHOLD": "1000"}
    it = Service(tmp_path, env)
    try:
        yield it
    finally:
        for server in it.servers:
            if server.proc.poll() is None:
                server.stop()


def report(test: str, **figures: object) -> None:
    """Print a test's figures (run with -s to see them) and log them where LLMRELAY_TEST_OUTAGE_LOG says."""
    line = json.dumps({"test": test, **figures})
    print("\n" + line)
    if LOG:
        with open(Path(LOG), "a") as f:
            f.write(line + "\n")


def wait_replayed(service: Service, database: Database, attempts: int, timeout: float = 60.0) -> list:
    """Wait until the spool is empty and the database holds `attempts` rows (or more: then fail at once)."""
    found: list = []

    def landed() -> bool:
        found[:] = database.rows()
        assert len(found) <= attempts, f"{len(found)} rows for {attempts} attempts"
        return len(found) == attempts and not service.spool_files()
    try:
        wait_for("every spooled row to land", landed, timeout, every=0.25)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {len(found)} rows of {attempts}, spool {service.spool_files()}") from None
    return found
