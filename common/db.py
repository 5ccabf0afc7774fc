"""PostgreSQL: the engine, transient-error classification, creating the database and migrating it."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import sqlalchemy
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, make_url

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
# SQLSTATE classes a reconnect or a retry can cure: connection exceptions (08),
# insufficient resources (53), operator intervention such as a restart (57), and
# serialization failures or deadlocks (40001, 40P01), lock timeouts (55P03).
_TRANSIENT_CLASSES = ("08", "53", "57")
_TRANSIENT_CODES = ("40001", "40P01", "55P03")


def make_engine(url: str, *, application_name: str, pool_size: int = 5, statement_timeout_ms: int = 30_000, pre_ping: bool = True) -> Engine:
    """An engine whose connections fail fast.

    With pre_ping each checkout first checks its connection (it may be stale after a
    restart), at the cost of a round trip; without it, callers retry once on
    `is_disconnect` (the first disconnect invalidates the whole pool).
    """
    return sqlalchemy.create_engine(
        driver_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=pre_ping,
        pool_recycle=3600,
        connect_args={
            "connect_timeout": 3,
            "application_name": application_name,
            "options": f"-c statement_timeout={statement_timeout_ms} -c timezone=UTC",
        },
    )


def is_disconnect(error: BaseException) -> bool:
    """The connection was dead (say, PostgreSQL restarted): the pool has been invalidated, a retry reconnects."""
    return isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated


def driver_url(url: str) -> sqlalchemy.URL:
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed


def is_transient(error: BaseException) -> bool:
    """True for errors worth retrying: the database is down, restarting, overloaded or deadlocked."""
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    code = getattr(error.orig, "pgcode", None)
    if code is None:
        # No SQLSTATE: the client library failed to connect or lost the socket.
        return isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError))
    return code[:2] in _TRANSIENT_CLASSES or code in _TRANSIENT_CODES


def sqlstate(error: BaseException) -> str | None:
    return getattr(getattr(error, "orig", None), "pgcode", None)


def ensure_database(url: str) -> bool:
    """Create the database named in url if it does not exist; True if it was created."""
    target = driver_url(url)
    name = target.database
    admin = sqlalchemy.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}).scalar()
            if exists:
                return False
            connection.exec_driver_sql(f'CREATE DATABASE "{_identifier(name)}"')
            log.info("created database", extra={"fields": {"database": name}})
            return True
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    target = driver_url(url)
    admin = sqlalchemy.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{_identifier(target.database)}" WITH (FORCE)')
    finally:
        admin.dispose()


def _identifier(name: str | None) -> str:
    if not name or '"' in name or "\x00" in name:
        raise ValueError(f"unusable database name {name!r}")
    return name


def migrate(url: str) -> None:
    """Bring the schema to the newest Alembic revision (what `alembic upgrade head` does)."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")


def make_psycopg_cooperative() -> None:
    """Make psycopg2 wait through gevent's hub instead of blocking its process (gevent workers only).

    psycopg2 then runs every libpq call asynchronously and calls `_wait_on_hub` whenever
    it would block; other greenlets (ingest requests) run meanwhile. What psycogreen's
    `patch_psycopg` does, plus the bound on connecting that libpq's connect_timeout no
    longer enforces in this mode: a server that accepts and never answers would
    otherwise hold a report (and a pool slot) forever.
    """
    from psycopg2 import extensions

    extensions.set_wait_callback(_wait_on_hub)


def _wait_on_hub(connection, timeout=None) -> None:  # noqa: ANN001 - psycopg2's wait-callback signature
    import psycopg2
    from gevent.socket import wait_read, wait_write
    from psycopg2 import extensions

    deadline = None
    if connection.status == extensions.STATUS_SETUP:  # still connecting
        connect_timeout = float(connection.get_dsn_parameters().get("connect_timeout") or 0)
        deadline = time.monotonic() + connect_timeout if connect_timeout > 0 else None
    while True:
        state = connection.poll()
        if state == extensions.POLL_OK:
            return
        left = None if deadline is None else deadline - time.monotonic()
        try:
            if state == extensions.POLL_READ:
                wait_read(connection.fileno(), timeout=left)
            elif state == extensions.POLL_WRITE:
                wait_write(connection.fileno(), timeout=left)
            else:
                raise psycopg2.OperationalError(f"unexpected poll state {state} from psycopg2")
        except OSError as exc:  # gevent raises socket.timeout (an OSError) when `left` runs out
            if deadline is not None and time.monotonic() >= deadline:
                raise psycopg2.OperationalError(f"timeout expired: no answer from PostgreSQL within {connect_timeout:g} s") from exc
            raise
