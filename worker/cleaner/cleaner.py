"""One cleaner run: the advisory lock, then each step in order (see the package docstring)."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from common.logging import fields
from common.timeutil import floor_hour, retention_cutoff
from worker.cleaner.base import CLEANER_LOCK_KEY, RunReport
from worker.cleaner.compaction import Compaction
from worker.cleaner.partitions import PartitionsAhead
from worker.cleaner.pruning import Pruning
from worker.cleaner.retention import Retention
from worker.cleaner.rollups import Rollups

log = logging.getLogger("worker.cleaner")


class Cleaner(PartitionsAhead, Retention, Compaction, Rollups, Pruning):
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
        self._step(report, "rollup_retention", lambda: self.expire_rollups(cutoff, report))
        self._step(report, "compaction", lambda: self.compact(cutoff, compact_before, report))
        self._step(report, "rollups", lambda: self.build_day_rollups(cutoff, compact_before, report))
        self._step(report, "pruning", lambda: self.prune_applied_ids(now - timedelta(hours=settings.dedup_retention_hours), report))
        self._step(report, "salts", lambda: self.delete_old_salts(now.date(), report))
        return report

    def _step(self, report: RunReport, name: str, step: Callable[[], None]) -> None:
        if self._stop.is_set():
            return
        started = time.monotonic()
        step()
        report.step_seconds[name] = round(time.monotonic() - started, 3)
        log.debug("cleaner step done", extra=fields(step=name, seconds=report.step_seconds[name]))
