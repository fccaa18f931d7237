"""/readyz as a load balancer reads it: 200 `ready`; 200 `degraded` while the database is away but the ledger
spools (keep sending traffic); 503 `unavailable` only when the rows could not be kept either."""

from __future__ import annotations

import shutil

import httpx
import pytest

from llmrelay.api import create_app
from llmrelay.config import load_settings


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_readyz_is_degraded_while_the_database_is_away_and_503_only_when_the_spool_cannot_take_rows(
        database, tmp_path):
    settings = load_settings(env_file=None, home=tmp_path / "home", database_url=database.url)
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://llmrelay.test") as client:
        spool = app.state.relay.ledger.recorder.spool_dir

        async def ready() -> tuple[int, dict]:
            r = await client.get("/readyz")
            return r.status_code, r.json()

        code, body = await ready()
        assert (code, body["status"], body["database"], body["ledger"]) == (200, "ready", "ok", "database")

        database.down()
        code, body = await ready()
        assert (code, body["status"], body["ledger"]) == (200, "degraded", "spooling")
        assert body["database"] not in ("ok", "") and body["spooled"] == 0

        shutil.rmtree(spool)
        spool.write_text("not a directory")  # nowhere to keep the rows
        code, body = await ready()
        assert (code, body["status"], body["ledger"]) == (503, "unavailable", "spool-not-writable")

        spool.unlink()
        code, body = await ready()
        assert (code, body["status"]) == (200, "degraded")

        database.up()
        code, body = await ready()
        assert (code, body["status"]) == (200, "ready")
