"""PostgreSQL: the engine, transient-error classification, creating the database and migrating it."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, TypeVar

import sqlalchemy
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine, make_url

log = logging.getLogger(__name__)
T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
# SQLSTATE classes a reconnect or a retry can cure: connection exceptions (08),
# insufficient resources (53), operator intervention such as a restart (57), and
# serialization failures or deadlocks (40001, 40P01), lock timeouts (55P03).
_TRANSIENT_CLASSES = ("08", "53", "57")
_TRANSIENT_CODES = ("40001", "40P01", "55P03")


def make_engine(
    url: str, *, application_name: str, pool_size: int = 5, statement_timeout_ms: int = 30_000, pre_ping: bool = True, autocommit: bool = False
) -> Engine:
    """An engine whose connections fail fast.

    With pre_ping each checkout first checks its connection (it may be stale after a
    restart), at the cost of a round trip; without it, callers retry once on
    `is_disconnect` (the first disconnect invalidates the whole pool). With autocommit
    (for `read`) no BEGIN and ROLLBACK go to the server around each use: a one-statement
    read is one round trip, and nothing toggles the connection's mode per checkout.
    """
    return sqlalchemy.create_engine(
        driver_url(url),
        isolation_level="AUTOCOMMIT" if autocommit else None,
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


def read(engine: Engine, work: Callable[[Connection], T], *, snapshot: bool = False) -> T:
    """Run the reads of `work(connection)`; a pooled connection found dead is retried once, fresh.

    `engine` is made with make_engine(..., autocommit=True). Without `snapshot` each
    statement sees its own snapshot, in one round trip (a one-statement report). With it,
    every statement runs in one REPEATABLE READ transaction and sees the same data.
    """
    try:
        return _read_once(engine, work, snapshot)
    except sa_exc.DBAPIError as exc:
        if not is_disconnect(exc):
            raise
    return _read_once(engine, work, snapshot)  # the pool was stale (a restart): once more, on a new connection


def _read_once(engine: Engine, work: Callable[[Connection], T], snapshot: bool) -> T:
    with engine.connect() as connection:
        if not snapshot:
            return work(connection)
        connection.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            return work(connection)
        finally:
            connection.exec_driver_sql("ROLLBACK")


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
