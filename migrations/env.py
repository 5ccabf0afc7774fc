"""Alembic environment: online migrations only, serialised by an advisory lock.

Several processes may start at once (docker compose, `make run`, parallel test
sessions against one server); the lock makes the second wait for the first instead
of both creating the same tables.

No target metadata: the migrations are the one description of the schema. What they
build (day partitions made by a PL/pgSQL function, a BRIN index, a generated key column,
an hll column from an extension) is beyond what SQLAlchemy's MetaData describes, so a
MetaData beside them could only drift, and `alembic revision --autogenerate` would then
propose dropping what it cannot see. Write each migration by hand, in SQL.

It logs what it does: the database, the revision it found, each migration (Alembic's own
"Running upgrade" lines) and the revision it leaves. Run as `alembic upgrade head` (the
compose service `migrate`) it sets up logging itself, as LOG_LEVEL and LOG_FORMAT say.
"""
import logging

from alembic import context
from sqlalchemy import create_engine, pool, text

from common import logging as structured_logging
from common.config import Settings, mask_url
from common.db import driver_url
from common.logging import fields

log = logging.getLogger("migrations")

MIGRATION_LOCK_KEY = 7_244_186_001  # any constant unique to this application


def database_url() -> str:
    url = context.config.attributes.get("database_url")
    if url:  # common.db.migrate(): its caller has set up logging
        return url
    settings = Settings.from_env()  # the alembic command line
    structured_logging.configure(settings.log_level, settings.log_format)
    return settings.database_url


def run_migrations_online() -> None:
    url = database_url()
    engine = create_engine(driver_url(url), poolclass=pool.NullPool)
    log.info("migrating to the newest revision; waiting for the migration lock", extra=fields(database=mask_url(url)))
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=None)
            log.info("database found", extra=fields(revision=context.get_context().get_current_revision() or "none (empty database)"))
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
            log.info("database migrated", extra=fields(revision=context.get_context().get_current_revision()))
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run `alembic upgrade head` against the database")
run_migrations_online()
