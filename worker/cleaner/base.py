"""The cleaner's shared parts: its settings, figures, and short transactions that give up on locks."""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from functools import partial
from typing import Callable, Iterator, TypeVar

from sqlalchemy import TextClause, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from common import db
from common.config import Settings
from common.db import sqlstate
from common.retry import call_with_retry
from common.sql import LIST_PARTITIONS, SET_LOCK_TIMEOUT, TRY_LOCK, UNLOCK
from common.timeutil import utc_now

log = logging.getLogger("worker.cleaner")
T = TypeVar("T")

CLEANER_LOCK_KEY = 7_244_186_002  # next to migrations/env.py's MIGRATION_LOCK_KEY; unique to the cleaner
PARTITIONS_AHEAD_DAYS = 7
LOCK_TIMEOUT_MS = 5_000
DELETE_BATCH_ROWS = 10_000
COMPACT_BATCH_GROUPS = 5_000
BATCH_ATTEMPTS = 5
# Keyset start for compaction: sorts before every (page_key, view_hour).
FIRST_GROUP = ("00000000-0000-0000-0000-000000000000", "-infinity")


@dataclass
class RunReport:
    partitions_created: int = 0
    partitions_dropped: int = 0
    rows_deleted: int = 0  # expired rows deleted one by one (rows of dropped partitions are not counted)
    groups_compacted: int = 0  # (page, hour) groups whose shard rows were merged
    rows_compacted: int = 0  # rows those groups had before the merge
    rows_after_compaction: int = 0  # rows they have after it (one each, unless a writer added one meanwhile)
    ids_pruned: int = 0
    days_rolled_up: int = 0  # UTC days whose page_days rollup was built
    page_day_rows_built: int = 0
    rollup_rows_deleted: int = 0  # expired page_days and site_hours rows
    salts_deleted: int = 0
    seconds: float = 0.0
    step_seconds: dict[str, float] = field(default_factory=dict)

    def figures(self) -> dict[str, int | float]:
        figures = asdict(self)
        del figures["step_seconds"]
        return figures


@dataclass(frozen=True)
class Partition:
    name: str  # as regclass prints it: quoted where needed, safe to put in SQL
    starts: datetime
    ends: datetime
    detach_pending: bool


@dataclass(frozen=True)
class CompactedBatch:
    groups_merged: int
    rows_before: int
    rows_after: int
    last: tuple[str, datetime]  # the next batch starts after this (page_key, view_hour)


def is_lock_timeout(error: BaseException) -> bool:
    return sqlstate(error) == "55P03"


def _detach_must_wait(error: BaseException) -> bool:
    # 55P03: a lock was not granted within lock_timeout. 55000: another partition is
    # pending detach (someone else's DETACH ... CONCURRENTLY, not yet finalized).
    return sqlstate(error) in ("55P03", "55000")


def _retry_unless_lock_timeout(error: BaseException) -> bool:
    # DDL that waits for a table lock makes everyone behind it wait too: after one
    # lock_timeout it is postponed to the next run, not tried again at once.
    return db.is_transient(error) and not is_lock_timeout(error)


class CleanerBase:
    """What every step uses: settings, engine, clock, stop flag, short transactions with lock timeouts."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = utc_now,
        stop: threading.Event | None = None,
        lock_timeout_ms: int = LOCK_TIMEOUT_MS,
        delete_batch_rows: int = DELETE_BATCH_ROWS,
        compact_batch_groups: int = COMPACT_BATCH_GROUPS,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._clock = clock
        self._stop = stop or threading.Event()
        self._lock_timeout = f"{lock_timeout_ms}ms"
        self._delete_batch_rows = delete_batch_rows
        self._compact_batch_groups = compact_batch_groups

    def _delete_in_batches(self, what: str, statement: TextClause, params: dict) -> int:
        deleted = 0
        while not self._stop.is_set():
            count = self._retry(what, partial(self._execute_count, statement, params))
            deleted += count
            if count == 0:
                break
        return deleted

    def _execute_count(self, statement: TextClause, params: dict) -> int:
        with self._transaction() as connection:
            return connection.execute(statement, params).rowcount

    def _partitions(self) -> list[Partition]:
        with self._engine.connect() as connection:
            return [Partition(row.name, row.starts, row.ends, row.detach_pending) for row in connection.execute(LIST_PARTITIONS)]

    def _retry(self, what: str, func: Callable[[], T], retryable: Callable[[BaseException], bool] = db.is_transient) -> T:
        return call_with_retry(func, what=what, is_transient=retryable, max_attempts=BATCH_ATTEMPTS)

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A short transaction that gives up waiting for a lock after lock_timeout.

        Without it a cleaner queued behind a long transaction would make every later
        writer queue behind the cleaner (lock requests are granted in order).
        """
        with self._engine.begin() as connection:
            connection.execute(SET_LOCK_TIMEOUT, {"value": self._lock_timeout, "is_local": True})
            yield connection

    @contextmanager
    def _autocommit(self) -> Iterator[Connection]:
        """A connection outside any transaction block, as DETACH ... CONCURRENTLY requires."""
        with self._engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.execute(SET_LOCK_TIMEOUT, {"value": self._lock_timeout, "is_local": False})
            try:
                yield connection
            except BaseException:
                connection.invalidate()  # broken, or still carrying our lock_timeout: not for the pool
                raise
            connection.exec_driver_sql("RESET lock_timeout")

    @contextmanager
    def _single_runner(self) -> Iterator[bool]:
        """Hold the cleaner's session-level advisory lock for the length of the run, if it is free."""
        with self._engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            acquired = bool(connection.execute(TRY_LOCK, {"key": CLEANER_LOCK_KEY}).scalar())
            try:
                yield acquired
            finally:
                if acquired:
                    _unlock(connection)

def _unlock(connection: Connection) -> None:
    try:
        connection.execute(UNLOCK, {"key": CLEANER_LOCK_KEY})
    except DBAPIError:
        # The session is gone (a database restart), and the lock went with it; closing
        # this connection instead of pooling it makes sure of that.
        connection.invalidate()


def _on(template: str, partition: Partition) -> TextClause:
    """A statement template that names {table}, for one partition."""
    return text(template.format(table=partition.name))


def _day_of(table_name: str) -> date | None:
    try:
        return datetime.strptime(table_name[-8:], "%Y%m%d").date()
    except ValueError:
        return None


def _start_of(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


