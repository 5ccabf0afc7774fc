"""Step 4: merge the shard rows of hours older than COMPACT_AFTER into shard 0 (exact under concurrent writes: see common/sql/cleaner.py MERGE_SHARDS)."""
from __future__ import annotations

from datetime import datetime
from functools import partial

from common.sql import CHOOSE_GROUPS, COUNT_GROUP_ROWS, MERGE_SHARDS
from worker.cleaner.base import FIRST_GROUP, CleanerBase, CompactedBatch, Partition, RunReport, _on


class Compaction(CleanerBase):
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
