"""Migrations from empty on both databases, and the models agree with the migrated schema."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from llmrelay.db.engine import make_engine
from llmrelay.db.migrate import current, head
from llmrelay.db.models import Base


async def test_migrations_from_empty_reach_head_and_match_the_models(db_url):
    engine = make_engine(db_url)
    assert await current(engine) == head()

    def diff(conn):
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)

    async with engine.connect() as conn:
        differences = await conn.run_sync(diff)
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    assert differences == []
    assert tables >= {"ai_model_usage", "ai_model_config", "ai_provider_costs", "users", "api_keys",
                      "conversations", "messages"}


async def test_upgrade_twice_is_a_no_op(db_url):
    from llmrelay.db.migrate import upgrade

    engine = make_engine(db_url)
    assert await upgrade(engine) == head()
    assert await upgrade(engine) == head()
    await engine.dispose()


def test_migrations_are_append_only_one_file_per_revision():
    from llmrelay.db.migrate import MIGRATIONS

    files = sorted(p.name for p in (MIGRATIONS / "versions").glob("*.py"))
    revisions = [name.split("_", 1)[0] for name in files]
    assert revisions == [f"{i:04d}" for i in range(1, len(files) + 1)]


async def test_migration_0005_backfills_which_attempts_were_first_on_their_provider_and_model(db_url):
    """Rows written before the flags existed get them from their request's earlier attempts."""
    import uuid

    from alembic import command
    from sqlalchemy import text

    from llmrelay.db.migrate import alembic_config, upgrade

    engine = make_engine(db_url)
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0004"))
    # one request: anthropic fails twice (a retry), openai/gpt-4o fails, openai/gpt-4o-mini answers
    attempts = [(1, "anthropic", "claude"), (2, "anthropic", "claude"), (3, "openai", "gpt-4o"),
                (4, "openai", "gpt-4o-mini"), (1, "openai", "gpt-4o")]
    async with engine.begin() as conn:
        for i, (attempt, provider, model) in enumerate(attempts):
            request = "r2" if i == 4 else "r1"
            await conn.execute(text(
                "INSERT INTO ai_model_usage (id, request_id, attempt, user_id, agent_id, provider, model, status, "
                "prompt_tokens, completion_tokens, total_tokens, cached_prompt_tokens, reasoning_tokens, "
                "cache_write_tokens, unpriced, cost_mismatch, latency_ms, created_at) VALUES (:id, :r, :a, 'u', "
                "'g', :p, :m, 'failed', 0, 0, 0, 0, 0, 0, false, false, 1, '2026-01-01 00:00:00')"),
                {"id": uuid.uuid4().hex if "sqlite" in db_url else uuid.uuid4(), "r": request, "a": attempt,
                 "p": provider, "m": model})
    assert await upgrade(engine) == head()
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT request_id, attempt, model, first_on_provider, first_on_model FROM ai_model_usage "
            "ORDER BY request_id, attempt"))).all()
    await engine.dispose()
    assert [(r[0], r[1], r[2], bool(r[3]), bool(r[4])) for r in rows] == [
        ("r1", 1, "claude", True, True), ("r1", 2, "claude", False, False), ("r1", 3, "gpt-4o", True, True),
        ("r1", 4, "gpt-4o-mini", False, True), ("r2", 1, "gpt-4o", True, True)]


def test_replicas_that_start_together_on_one_postgresql_migrate_once(pg_database):
    """Four `llmrelay db upgrade` processes at once on an empty PostgreSQL database (replicas starting
    together): one migrates, the others wait for its advisory lock and find the schema current."""
    import os
    import subprocess
    import sys
    import uuid

    from tests.dbfixtures import _admin, _run

    name = f"llmrelay_replicas_{uuid.uuid4().hex[:8]}"
    _run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        url = pg_database.rsplit("/", 1)[0] + "/" + name
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("LLMRELAY_")},
               "LLMRELAY_DATABASE_URL": url}
        procs = [subprocess.Popen([sys.executable, "-m", "llmrelay", "db", "upgrade"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
        assert all(code == 0 for code, _ in results), results

        async def revision():
            engine = make_engine(url)
            try:
                return await current(engine)
            finally:
                await engine.dispose()

        found = []

        async def keep():
            found.append(await revision())

        _run(keep())
        assert found == [head()]
    finally:
        _run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
