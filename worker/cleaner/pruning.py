"""Step 5: prune applied message ids older than DEDUP_RETENTION_HOURS, and visitor salts older than two days."""
from __future__ import annotations

from datetime import date, datetime
from functools import partial

from common.salts import oldest_salt_kept
from common.sql import DELETE_APPLIED_IDS, DELETE_OLD_SALTS
from worker.cleaner.base import CleanerBase, RunReport


class Pruning(CleanerBase):
    def prune_applied_ids(self, before: datetime, report: RunReport) -> None:
        params = {"before": before, "limit": self._delete_batch_rows}
        report.ids_pruned += self._delete_in_batches("prune applied message ids", DELETE_APPLIED_IDS, params)

    def delete_old_salts(self, today: date, report: RunReport) -> None:
        """Once a day's salt is gone, that day's visitor ids can no longer be linked to anyone."""
        params = {"oldest_kept": oldest_salt_kept(today)}
        report.salts_deleted += self._retry("delete old visitor salts", partial(self._execute_count, DELETE_OLD_SALTS, params))
