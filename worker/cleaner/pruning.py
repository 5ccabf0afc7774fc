"""Step 5: prune applied message ids older than DEDUP_RETENTION_HOURS."""
from __future__ import annotations

from datetime import datetime

from common.sql import DELETE_APPLIED_IDS
from worker.cleaner.base import CleanerBase, RunReport


class Pruning(CleanerBase):
    def prune_applied_ids(self, before: datetime, report: RunReport) -> None:
        params = {"before": before, "limit": self._delete_batch_rows}
        report.ids_pruned += self._delete_in_batches("prune applied message ids", DELETE_APPLIED_IDS, params)
