"""Step 5: roll closed UTC days up into page_days, and expire rollup rows older than RETENTION_DAYS.

A day is built once it has ended more than COMPACT_AFTER hours ago and lies whole inside
the retention window: from its hourly rows and the running sums of the day before, in one
transaction that also marks it in rollup_days, under exclusive advisory locks on the day
and the day before. Days are built in order, so each continues the chain of the one before
(a failed build ends the run; the next run starts from it). Views that arrive for a built
day later are added by the flush (common/sql/rollup_locks.py LOCK_DAYS says why the two cannot miss
each other), so a built day stays exact and is never built again. Building is
idempotent: a day already marked is skipped, and a build that fails rolls back whole.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from functools import partial

from common.logging import fields
from common.sql import (
    BUILD_DAY,
    CLEAR_DAY,
    DELETE_EXPIRED_PAGE_DAYS,
    DELETE_EXPIRED_SITE_HOURS,
    IS_BUILT,
    LOCK_DAY,
    MARK_BUILT,
    UNBUILT_DAYS,
    UNMARK_EXPIRED_DAYS,
)
from worker.cleaner.base import CleanerBase, RunReport, _start_of

log = logging.getLogger("worker.cleaner")


def first_whole_day(cutoff: datetime) -> date:
    """The first UTC day that starts at or after the retention cutoff."""
    return cutoff.date() if _start_of(cutoff.date()) == cutoff else cutoff.date() + timedelta(days=1)


class Rollups(CleanerBase):
    def build_day_rollups(self, cutoff: datetime, compact_before: datetime, report: RunReport) -> None:
        last = compact_before.date() - timedelta(days=1)  # the last day that ended by compact_before
        with self._engine.connect() as connection:
            days = list(connection.execute(UNBUILT_DAYS, {"first": first_whole_day(cutoff), "last": last}).scalars())
        for day in days:
            if self._stop.is_set():
                return
            rows = self._retry(f"roll up {day}", partial(self._build_day, day))
            if rows is not None:
                report.days_rolled_up += 1
                report.page_day_rows_built += rows
                log.info("rolled up day", extra=fields(day=day.isoformat(), page_days=rows))

    def _build_day(self, day: date) -> int | None:
        """The day's page_days rows and its mark, in one transaction; None if it was built meanwhile."""
        with self._transaction() as connection:
            # Waits for flushes that add to this day or to the running sums of the day before (common/sql/rollup_locks.py LOCK_DAYS).
            connection.execute(LOCK_DAY, {"day": day - timedelta(days=1)})
            connection.execute(LOCK_DAY, {"day": day})
            if connection.execute(IS_BUILT, {"day": day}).scalar():
                return None
            connection.execute(CLEAR_DAY, {"day": day})
            start = _start_of(day)
            rows = connection.execute(BUILD_DAY, {"day": day, "start": start, "end": start + timedelta(days=1)}).rowcount
            connection.execute(MARK_BUILT, {"day": day})
        return rows

    def expire_rollups(self, cutoff: datetime, report: RunReport) -> None:
        first_day = first_whole_day(cutoff)
        self._retry("unmark expired days", partial(self._execute_count, UNMARK_EXPIRED_DAYS, {"first_day": first_day}))
        page_days = {"first_day": first_day, "limit": self._delete_batch_rows}
        report.rollup_rows_deleted += self._delete_in_batches("delete expired page_days", DELETE_EXPIRED_PAGE_DAYS, page_days)
        site_hours = {"cutoff": cutoff, "limit": self._delete_batch_rows}
        report.rollup_rows_deleted += self._delete_in_batches("delete expired site_hours", DELETE_EXPIRED_SITE_HOURS, site_hours)
