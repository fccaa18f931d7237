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
