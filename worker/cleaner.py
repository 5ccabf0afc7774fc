"""`python -m worker.cleaner`: keeps page_views small and the exactly-once bookkeeping bounded.

One run, in order, each step in short transactions so that workers writing at the same
time never wait long on the cleaner, and a stop request can end the run between two of
them:

1. take the cleaner's advisory lock: one cleaner at a time; a second one skips its run;
2. create the day partitions of today and the next PARTITIONS_AHEAD_DAYS days, so that
   workers rarely have to (creating a partition locks the whole table);
3. expire hours older than RETENTION_DAYS: whole days by detaching and dropping their
   partition, the day that contains the cutoff by deleting rows in batches;
4. compact hours older than COMPACT_AFTER: merge each hour's shard rows into shard 0;
5. prune applied message ids older than DEDUP_RETENTION_HOURS.

`--once` runs once (for cron). Without it the cleaner runs every CLEAN_INTERVAL seconds
until SIGTERM or SIGINT.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import partial
from typing import Callable, Iterator, TypeVar

from sqlalchemy import TextClause, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from common import process
from common.config import Settings
from common.db import is_transient, make_engine, sqlstate
from common.logging import fields
from common.retry import call_with_retry
from common.timeutil import floor_hour, retention_cutoff, utc_now
from worker.store import ENSURE_PARTITION

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

TRY_LOCK = text("SELECT pg_try_advisory_lock(:key)")
UNLOCK = text("SELECT pg_advisory_unlock(:key)")
SET_LOCK_TIMEOUT = text("SELECT set_config('lock_timeout', :value, :is_local)")

# The partitions as the catalog knows them, with the range each one covers. A DEFAULT
# or MINVALUE/MAXVALUE partition has no quoted bounds and is left alone.
LIST_PARTITIONS = text(
    r"""
    SELECT c.oid::regclass::text AS name, i.inhdetachpending AS detach_pending,
           m.bounds[1]::timestamptz AS starts, m.bounds[2]::timestamptz AS ends
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS m(bounds)
    WHERE i.inhparent = 'page_views'::regclass AND m.bounds IS NOT NULL
    ORDER BY starts
    """
)

# Day tables that are no longer partitions: left behind by a run that died between
# DETACH and DROP. The worker's page_views_ensure_partition sees the name taken and would
# never re-create that day, so they must go.
LIST_LEFTOVER_TABLES = text(
    """
    SELECT c.oid::regclass::text AS name, c.relname
    FROM pg_class c
    WHERE c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'page_views'::regclass)
      AND c.relkind = 'r' AND NOT c.relispartition AND c.relname ~ '^page_views_[0-9]{8}$'
    """
)

# ctid batches: each statement deletes at most :limit rows, so no transaction holds many
# row locks or runs long. ctid is only unique within one table, hence one partition.
DELETE_EXPIRED_ROWS = "DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE view_hour < :cutoff LIMIT :limit))"
DELETE_APPLIED_IDS = text(
    "DELETE FROM applied_messages WHERE ctid = ANY(ARRAY(SELECT ctid FROM applied_messages WHERE applied_at < :before LIMIT :limit))"
)

# The next batch of (page_key, view_hour) groups with more than one row, in primary-key
# order after the previous batch, so that one day is read once however many batches it takes.
CHOOSE_GROUPS = """
    SELECT page_key, view_hour, count(*) AS rows
    FROM {table}
    WHERE view_hour >= :low AND view_hour < :high
      AND (page_key, view_hour) > (CAST(:after_key AS uuid), CAST(:after_hour AS timestamptz))
    GROUP BY page_key, view_hour
    HAVING count(*) > 1
    ORDER BY page_key, view_hour
    LIMIT :limit
"""

BATCH = "unnest(CAST(:keys AS uuid[]), CAST(:hours AS timestamptz[])) AS g(page_key, view_hour)"

# Why this stays exact while workers upsert into the same hours (READ COMMITTED):
# - A shard row a worker updates concurrently: the DELETE waits for the worker's commit,
#   re-reads the row's newest version, still matches it (same key, shard <> 0), deletes
#   that version and RETURNs its new views, so the worker's +n moves to shard 0 with it.
# - A worker upserting a shard row this DELETE has removed: its INSERT waits on our
#   transaction, then finds no conflicting row and inserts a fresh one. A shard row a
#   worker inserts after this statement began is not seen by the DELETE. Either way
#   nothing is lost, and the next run merges that row.
# - Shard 0 is never deleted, so the INSERT never meets a row this statement deletes; it
#   and the workers' upserts into shard 0 are both ON CONFLICT ... views + EXCLUDED.views,
#   which PostgreSQL applies one after the other on the newest version.
# - DELETE and INSERT are one statement in one transaction: readers see the views either
#   in the shard rows or in shard 0, never in both or neither.
# Deadlocks with a worker's multi-row flush are possible; the batch is then retried whole.
# The key range repeats what the batch implies (it is a slice of the primary key): without
# it the planner tends to hash-join the batch against a scan of the whole day.
MERGE_SHARDS = f"""
    WITH moved AS (
        DELETE FROM {{table}} p USING {BATCH}
        WHERE p.page_key = g.page_key AND p.view_hour = g.view_hour AND p.shard <> 0
          AND (p.page_key, p.view_hour) >= (CAST(:first_key AS uuid), CAST(:first_hour AS timestamptz))
          AND (p.page_key, p.view_hour) <= (CAST(:last_key AS uuid), CAST(:last_hour AS timestamptz))
        RETURNING p.page, p.view_hour, p.views
    ), merged AS (
        INSERT INTO page_views (page, view_hour, shard, views)
        SELECT page, view_hour, 0, sum(views)::bigint FROM moved GROUP BY page, view_hour
        ON CONFLICT (page_key, view_hour, shard) DO UPDATE SET views = page_views.views + EXCLUDED.views
        RETURNING 1
    )
    SELECT count(*) FROM merged
"""

COUNT_GROUP_ROWS = f"SELECT count(*) FROM {{table}} p JOIN {BATCH} ON p.page_key = g.page_key AND p.view_hour = g.view_hour"


@dataclass
class RunReport:
    partitions_created: int = 0
    partitions_dropped: int = 0
    rows_deleted: int = 0  # expired rows deleted one by one (rows of dropped partitions are not counted)
    groups_compacted: int = 0  # (page, hour) groups whose shard rows were merged
    rows_compacted: int = 0  # rows those groups had before the merge
    rows_after_compaction: int = 0  # rows they have after it (one each, unless a writer added one meanwhile)
    ids_pruned: int = 0
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
    return is_transient(error) and not is_lock_timeout(error)


def describe(error: BaseException) -> str:
    message = str(getattr(error, "orig", None) or error).strip().splitlines()
    return message[0] if message else type(error).__name__


class Cleaner:
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

    def run(self) -> RunReport | None:
        """One run; None when another cleaner holds the lock (then nothing was done)."""
        started = time.monotonic()
        with self._single_runner() as acquired:
            if not acquired:
                log.info("cleaner already running elsewhere; skipping this run", extra=fields(lock_key=CLEANER_LOCK_KEY))
                return None
            report = self._run_steps(self._clock().astimezone(timezone.utc))
        report.seconds = round(time.monotonic() - started, 3)
        if self._stop.is_set():
            log.info("stop requested during the run; whatever is left is for the next one")
        log.info("cleaner run", extra=fields(**report.figures()))
        return report

    def _run_steps(self, now: datetime) -> RunReport:
        settings = self._settings
        report = RunReport()
        cutoff = retention_cutoff(now, settings.retention_days)
        compact_before = floor_hour(now) - timedelta(hours=settings.compact_after)
        self._step(report, "partitions_ahead", lambda: self.create_partitions_ahead(now.date(), report))
        self._step(report, "retention", lambda: self.expire(cutoff, report))
        self._step(report, "compaction", lambda: self.compact(cutoff, compact_before, report))
        self._step(report, "pruning", lambda: self.prune_applied_ids(now - timedelta(hours=settings.dedup_retention_hours), report))
        return report

    def _step(self, report: RunReport, name: str, step: Callable[[], None]) -> None:
        if self._stop.is_set():
            return
        started = time.monotonic()
        step()
        report.step_seconds[name] = round(time.monotonic() - started, 3)
        log.debug("cleaner step done", extra=fields(step=name, seconds=report.step_seconds[name]))

    # -- 2. partitions ahead

    def create_partitions_ahead(self, today: date, report: RunReport) -> None:
        for offset in range(PARTITIONS_AHEAD_DAYS + 1):
            day = today + timedelta(days=offset)
            try:
                created = self._retry(f"create partition {day}", partial(self._ensure_partition, day), _retry_unless_lock_timeout)
            except DBAPIError as exc:
                if not is_lock_timeout(exc):
                    raise
                # A long transaction holds page_views; days ahead leave time for the next run.
                log.warning("partition creation postponed: page_views is busy", extra=fields(day=day.isoformat(), error=describe(exc)))
                return
            if created:
                report.partitions_created += 1
                log.info("created partition", extra=fields(day=day.isoformat()))

    def _ensure_partition(self, day: date) -> bool:
        # Its own transaction: creating a partition locks all of page_views until commit.
        with self._transaction() as connection:
            return bool(connection.execute(ENSURE_PARTITION, {"day": day}).scalar())

    # -- 3. retention

    def expire(self, cutoff: datetime, report: RunReport) -> None:
        partitions = self._partitions()
        report.partitions_dropped += self._drop_partitions([p for p in partitions if p.ends <= cutoff])
        report.partitions_dropped += self._drop_leftover_tables(cutoff)
        for partition in partitions:
            if partition.starts < cutoff < partition.ends and not partition.detach_pending:
                report.rows_deleted += self._delete_rows_before(partition, cutoff)

    def _drop_partitions(self, expired: list[Partition]) -> int:
        dropped = 0
        # Only one partition may be pending detach at a time, and while one is, every other
        # DETACH ... CONCURRENTLY fails: finish a pending one first.
        for partition in sorted(expired, key=lambda p: not p.detach_pending):
            if self._stop.is_set() or not self._drop_partition(partition):
                break  # whatever held this partition up would hold up the next one too
            dropped += 1
        return dropped

    def _drop_partition(self, partition: Partition) -> bool:
        """Detach without blocking the workers, then drop; False when a lock was not granted in time."""
        mode = "FINALIZE" if partition.detach_pending else "CONCURRENTLY"
        try:
            with self._autocommit() as connection:
                # CONCURRENTLY waits for every transaction that uses page_views to end. If
                # lock_timeout cuts that wait short the partition stays "detach pending",
                # invisible to new queries, and the next run finishes it with FINALIZE.
                connection.exec_driver_sql(f"ALTER TABLE page_views DETACH PARTITION {partition.name} {mode}")
                connection.exec_driver_sql(f"DROP TABLE {partition.name}")
        except DBAPIError as exc:
            if not _detach_must_wait(exc):
                raise
            log.warning("partition drop postponed", extra=fields(partition=partition.name, error=describe(exc)))
            return False
        log.info("dropped partition", extra=fields(partition=partition.name, finalized=partition.detach_pending))
        return True

    def _drop_leftover_tables(self, cutoff: datetime) -> int:
        with self._engine.connect() as connection:
            leftovers = connection.execute(LIST_LEFTOVER_TABLES).all()
        dropped = 0
        for name, relname in leftovers:
            day = _day_of(relname)
            if day is None or _start_of(day + timedelta(days=1)) > cutoff:
                continue  # not expired: someone detached it on purpose; not ours to drop
            if self._stop.is_set():
                break
            try:
                with self._autocommit() as connection:
                    connection.exec_driver_sql(f"DROP TABLE {name}")
            except DBAPIError as exc:
                if not is_lock_timeout(exc):
                    raise
                log.warning("leftover table drop postponed", extra=fields(table=name, error=describe(exc)))
                continue
            log.info("dropped leftover detached table", extra=fields(table=name))
            dropped += 1
        return dropped

    def _delete_rows_before(self, partition: Partition, cutoff: datetime) -> int:
        params = {"cutoff": cutoff, "limit": self._delete_batch_rows}
        return self._delete_in_batches(f"delete expired rows of {partition.name}", _on(DELETE_EXPIRED_ROWS, partition), params)

    # -- 4. compaction

    def compact(self, cutoff: datetime, compact_before: datetime, report: RunReport) -> None:
        for partition in self._partitions():
            low, high = max(partition.starts, cutoff), min(partition.ends, compact_before)
            if low < high and not partition.detach_pending:
                self._compact_partition(partition, low, high, report)

    def _compact_partition(self, partition: Partition, low: datetime, high: datetime, report: RunReport) -> None:
        """Merge the groups of one day partition (one bounded scan of it), a batch per transaction."""
        after: tuple[str, datetime | str] = FIRST_GROUP
        while not self._stop.is_set():
            batch = self._retry(f"compact {partition.name}", partial(self._compact_batch, partition, low, high, after))
            if batch is None:
                return
            report.groups_compacted += batch.groups_merged
            report.rows_compacted += batch.rows_before
            report.rows_after_compaction += batch.rows_after
            after = batch.last

    def _compact_batch(
        self, partition: Partition, low: datetime, high: datetime, after: tuple[str, datetime | str]
    ) -> CompactedBatch | None:
        """Choose the next groups and merge them, in one transaction; None when no group is left."""
        choose = {"low": low, "high": high, "after_key": after[0], "after_hour": after[1], "limit": self._compact_batch_groups}
        with self._transaction() as connection:
            groups = connection.execute(_on(CHOOSE_GROUPS, partition), choose).all()
            if not groups:
                return None
            first, last = groups[0], groups[-1]
            batch = {"keys": [g.page_key for g in groups], "hours": [g.view_hour for g in groups]}
            key_range = {"first_key": first.page_key, "first_hour": first.view_hour, "last_key": last.page_key, "last_hour": last.view_hour}
            merged = connection.execute(_on(MERGE_SHARDS, partition), {**batch, **key_range}).scalar()
            rows_after = connection.execute(_on(COUNT_GROUP_ROWS, partition), batch).scalar()
        return CompactedBatch(int(merged), sum(g.rows for g in groups), int(rows_after), (str(last.page_key), last.view_hour))

    # -- 5. pruning

    def prune_applied_ids(self, before: datetime, report: RunReport) -> None:
        params = {"before": before, "limit": self._delete_batch_rows}
        report.ids_pruned += self._delete_in_batches("prune applied message ids", DELETE_APPLIED_IDS, params)

    # -- plumbing

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

    def _retry(self, what: str, func: Callable[[], T], retryable: Callable[[BaseException], bool] = is_transient) -> T:
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


# -- command line


def run_logging_failure(cleaner: Cleaner) -> bool:
    """One run; a database failure is logged (the next run tries again) and returns False."""
    try:
        cleaner.run()
    except SQLAlchemyError as exc:
        log.error("cleaner run failed", extra=fields(error=describe(exc)))
        return False
    return True


def run_every(cleaner: Cleaner, interval_s: int, stop: threading.Event) -> None:
    while not stop.is_set():
        run_logging_failure(cleaner)
        stop.wait(interval_s)


def stop_on_signals(stop: threading.Event) -> None:
    def request_stop(signum: int, _frame: object) -> None:
        # Only a flag: the current batch commits, the run ends before the next one, main returns.
        log.info("stop requested", extra=fields(signal=signal.Signals(signum).name))
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m worker.cleaner", description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="run once and exit (0 on success), e.g. from cron")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = process.start("cleaner", once=args.once)
    stop = threading.Event()
    stop_on_signals(stop)
    engine = make_engine(settings.database_url, application_name="pageviews-cleaner", pool_size=2)
    try:
        cleaner = Cleaner(settings, engine, stop=stop)
        if args.once:
            return 0 if run_logging_failure(cleaner) else 1
        run_every(cleaner, settings.clean_interval, stop)
        return 0
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
