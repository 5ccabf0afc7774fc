"""Step 3: expire hours older than RETENTION_DAYS: drop whole day partitions, delete rows of the day that contains the cutoff."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError

from common.logging import error_summary, fields
from common.sql import DELETE_EXPIRED_ROWS, LIST_LEFTOVER_TABLES
from worker.cleaner.base import CleanerBase, Partition, RunReport, _day_of, _detach_must_wait, _on, _start_of, is_lock_timeout

log = logging.getLogger("worker.cleaner")

class Retention(CleanerBase):
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
            log.warning("partition drop postponed", extra=fields(partition=partition.name, error=error_summary(exc)))
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
                log.warning("leftover table drop postponed", extra=fields(table=name, error=error_summary(exc)))
                continue
            log.info("dropped leftover detached table", extra=fields(table=name))
            dropped += 1
        return dropped

    def _delete_rows_before(self, partition: Partition, cutoff: datetime) -> int:
        params = {"cutoff": cutoff, "limit": self._delete_batch_rows}
        return self._delete_in_batches(f"delete expired rows of {partition.name}", _on(DELETE_EXPIRED_ROWS, partition), params)
