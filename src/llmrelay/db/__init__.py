"""The database: SQLAlchemy 2 async models, engine, Alembic migrations."""
