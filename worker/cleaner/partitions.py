"""Step 2: create the day partitions of today and the next days ahead, so that workers rarely have to."""
from __future__ import annotations

import logging
from datetime import date, timedelta
from functools import partial

from sqlalchemy.exc import DBAPIError

from common.logging import error_summary, fields
from common.sql import ENSURE_PARTITION
from worker.cleaner.base import PARTITIONS_AHEAD_DAYS, CleanerBase, RunReport, _retry_unless_lock_timeout, is_lock_timeout

log = logging.getLogger("worker.cleaner")

class PartitionsAhead(CleanerBase):
    def create_partitions_ahead(self, today: date, report: RunReport) -> None:
        for offset in range(PARTITIONS_AHEAD_DAYS + 1):
            day = today + timedelta(days=offset)
            try:
                created = self._retry(f"create partition {day}", partial(self._ensure_partition, day), _retry_unless_lock_timeout)
            except DBAPIError as exc:
                if not is_lock_timeout(exc):
                    raise
                # A long transaction holds page_views; days ahead leave time for the next run.
                log.warning("partition creation postponed: page_views is busy", extra=fields(day=day.isoformat(), error=error_summary(exc)))
                return
            if created:
                report.partitions_created += 1
                log.info("created partition", extra=fields(day=day.isoformat()))

    def _ensure_partition(self, day: date) -> bool:
        # Its own transaction: creating a partition locks all of page_views until commit.
        with self._transaction() as connection:
            return bool(connection.execute(ENSURE_PARTITION, {"day": day}).scalar())
