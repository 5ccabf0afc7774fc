"""PostgreSQL: the engine, transient-error classification, creating the database and migrating it."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

import sqlalchemy
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine, make_url

from common.logging import fields

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
# SQLSTATE classes a reconnect or a retry can cure: connection exceptions (08),
# insufficient resources (53), operator intervention such as a restart (57), and
# serialization failures or deadlocks (40001, 40P01), lock timeouts (55P03).
_TRANSIENT_CLASSES = ("08", "53", "57")
_TRANSIENT_CODES = ("40001", "40P01", "55P03")
# How long a report replica that failed is left aside (reads go to the primary) before it is tried again.
REPLICA_RECHECK_S = 5.0
T = TypeVar("T")


def make_engine(
    url: str, *, application_name: str, pool_size: int = 5, statement_timeout_ms: int = 30_000, pre_ping: bool = True, autocommit: bool = False
) -> Engine:
    """An engine whose connections fail fast.

    With pre_ping each checkout first checks its connection (it may be stale after a
    restart), at the cost of a round trip; without it, callers retry once on
    `is_disconnect` (the first disconnect invalidates the whole pool). With autocommit
    no BEGIN and ROLLBACK go to the server around each use: a one-statement read is one
    round trip, and nothing toggles the connection's mode per checkout.
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


def read_retrying_a_dead_connection(engine: Engine, query: Callable[[Connection], T]) -> T:
    """query(connection), once more on a new connection if the pooled one was dead (the server restarted)."""
    try:
        with engine.connect() as connection:
            return query(connection)
    except sa_exc.DBAPIError as exc:
        if not is_disconnect(exc):
            raise
    with engine.connect() as connection:
        return query(connection)


def in_one_snapshot(query: Callable[[Connection], T]) -> Callable[[Connection], T]:
    """query run in one REPEATABLE READ READ ONLY transaction, so that its statements see the
    same data; for connections of an engine made with autocommit=True."""

    def run(connection: Connection) -> T:
        connection.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            return query(connection)
        finally:
            connection.exec_driver_sql("ROLLBACK")

    return run


class ReportDatabase:
    """Where reports read: a streaming replica (REPORT_DATABASE_URL) while it answers, else the primary.

    A replica that fails with an error a reconnect could cure (it is down or restarting,
    or a query was cancelled by a recovery conflict) is left aside for REPLICA_RECHECK_S:
    meanwhile reads go to the primary, with one log line when that starts and one when
    the replica answers again. Without a replica every read goes to the primary.
    """

    def __init__(self, primary: Engine, replica: Engine | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._primary = primary
        self._replica = replica
        self._clock = clock
        self._lock = threading.Lock()
        self._aside_since: float | None = None

    def read(self, query: Callable[[Connection], T]) -> T:
        """query(connection) on the replica, or on the primary while the replica is down."""
        if self._replica is not None and self._replica_worth_trying():
            try:
                result = read_retrying_a_dead_connection(self._replica, query)
            except sa_exc.DBAPIError as exc:
                if not is_transient(exc):
                    raise
                self._set_replica_aside(exc)
            else:
                self._replica_answered()
                return result
        return read_retrying_a_dead_connection(self._primary, query)

    @property
    def reading_from(self) -> str:
        """'replica' or 'primary': where the next read goes (for /ready and tests)."""
        return "replica" if self._replica is not None and self._replica_worth_trying() else "primary"

    def _replica_worth_trying(self) -> bool:
        aside_since = self._aside_since
        return aside_since is None or self._clock() - aside_since >= REPLICA_RECHECK_S

    def _set_replica_aside(self, error: BaseException) -> None:
        with self._lock:
            first = self._aside_since is None
            self._aside_since = self._clock()
        if first:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            log.warning("report replica unavailable; reading reports from the primary", extra=fields(error=reason[:300]))

    def _replica_answered(self) -> None:
        if self._aside_since is None:
            return
        with self._lock:
            was_aside, self._aside_since = self._aside_since is not None, None
        if was_aside:
            log.info("report replica answers again; reading reports from it")


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
