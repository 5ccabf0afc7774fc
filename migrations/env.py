"""Alembic environment: online migrations only, serialised by an advisory lock.

Several processes may start at once (docker compose, `make run`, parallel test
sessions against one server); the lock makes the second wait for the first instead
of both creating the same tables.

No target metadata: the migrations are the one description of the schema. What they
build (day partitions made by a PL/pgSQL function, a BRIN index, a generated key column,
an hll column from an extension) is beyond what SQLAlchemy's MetaData describes, so a
MetaData beside them could only drift, and `alembic revision --autogenerate` would then
propose dropping what it cannot see. Write each migration by hand, in SQL.
"""
from alembic import context
from sqlalchemy import create_engine, pool, text

from common.config import Settings
from common.db import driver_url

MIGRATION_LOCK_KEY = 7_244_186_001  # any constant unique to this application


def database_url() -> str:
    return context.config.attributes.get("database_url") or Settings.from_env().database_url


def run_migrations_online() -> None:
    engine = create_engine(driver_url(database_url()), poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=None)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run `alembic upgrade head` against the database")
run_migrations_online()
