"""Writing a batch: one transaction that records the message ids and adds the counts.

The counts go to page_views and, in the same statement, to the rollups: site_hours, and
page_days for days the cleaner has already rolled up (common/sql/flush.py ADD_COUNTS and
common/sql/rollup_locks.py LOCK_DAYS), so every rollup is exactly once whenever page_views is.

Visitors ride along: each row's visitor ids become a sketch united with the row's (see
common/sql/flush.py ADD_COUNTS_AND_VISITORS). They need no exactly-once care: a sketch union is
idempotent, so a redelivered message's visitors change nothing; only its views are taken out.

Exactly once: the ids go into applied_messages first, in the same transaction as the
counts. An id already there was counted by an earlier flush whose acknowledgement was
lost (a crash between commit and ack, a lost connection, a repeated publish), so its
views are taken out before the counts are added. Either the whole batch commits, ids
and counts together, or none of it does.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import date, datetime
from typing import Callable

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from common.db import sqlstate
from common.logging import fields
from common.sql import (
    ADD_COUNTS,
    ADD_COUNTS_AND_VISITORS,
    ENSURE_PARTITION,
    LOCK_DAYS,
    PARTITION_LOCK_TIMEOUT,
    RECORD_IDS_AFTER_LOCKING_DAYS,
)
from common.timeutil import hour_start_epoch, retention_cutoff, utc_now
from common.views import ViewCounts, VisitorIds
from worker.buffer import Batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    messages: int  # messages counted by this flush
    duplicates: int  # messages skipped because their id was already applied
    views: int
    rows: int
    expired: int = 0  # views whose hour left the retention window while they waited in a queue


def is_missing_partition(error: BaseException) -> bool:
    return sqlstate(error) == "23514" and "no partition" in str(error)


def is_data_error(error: BaseException) -> bool:
    """Errors caused by the data of some message (SQLSTATE classes 22 and 23), not by the database."""
    code = sqlstate(error) or ""
    return code[:2] in ("22", "23") and not is_missing_partition(error)


class Store:
    def __init__(
        self,
        engine: Engine,
        num_shards: int,
        retention_days: int,
        *,
        exactly_once: bool = True,
        rng: random.Random | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self._num_shards = num_shards
        self._retention_days = retention_days
        self._exactly_once = exactly_once
        self._rng = rng or random.Random()
        self._now = now
        self._known_days: set[date] = set()

    def apply(self, batch: Batch) -> Applied:
        cutoff = retention_cutoff(self._now(), self._retention_days)
        days = {day for day in batch.days() if day >= cutoff.date()}
        self._ensure_partitions(days)
        try:
            return self._apply(batch, days, hour_start_epoch(cutoff))
        except DBAPIError as exc:
            if not is_missing_partition(exc):
                raise
            # A day we had seen was dropped behind our back: make it again.
            self._known_days.clear()
            self._ensure_partitions(days)
            return self._apply(batch, days, hour_start_epoch(cutoff))

    def _apply(self, batch: Batch, days: set[date], cutoff_epoch: int) -> Applied:
        today = self._now().date()
        # Every day the batch may write, through today (why: common/sql/rollup_locks.py).
        locked = {"first_day": min(days, default=today), "last_day": max(days | {today})}
        with self._engine.begin() as connection:
            duplicates: set[str] = set()
            if self._exactly_once:
                fresh = set(RECORD_IDS_AFTER_LOCKING_DAYS.execute(connection, {"ids": list(batch.messages), **locked}).scalars())
                duplicates = {message_id for message_id in batch.messages if message_id not in fresh}
            else:
                connection.execute(LOCK_DAYS, locked)
            counts = batch.counts_without(duplicates) if duplicates else batch.counts
            counts, expired = _without_expired(counts, cutoff_epoch)
            if counts:
                rows = self._rows(counts)
                visitors = _visitor_rows(counts, batch.visitors)
                (ADD_COUNTS_AND_VISITORS if visitors else ADD_COUNTS).execute(connection, {**rows, **visitors})
        if duplicates:
            log.info("skipped messages already counted", extra=fields(duplicates=len(duplicates)))
        if expired:
            # Accepted inside the window, but queued until it left it: the cleaner would
            # delete these rows anyway, and their day partition may already be gone.
            log.warning("skipped views older than the retention window", extra=fields(views=expired, retention_days=self._retention_days))
        views = sum(counts.values())
        return Applied(len(batch.messages) - len(duplicates), len(duplicates) + batch.duplicates_in_batch, views, len(counts), expired)

    def _rows(self, counts: ViewCounts) -> dict[str, list]:
        pages, hours, views = [], [], []
        for (page, hour), count in counts.items():
            pages.append(page)
            hours.append(hour)
            views.append(count)
        # A random shard per row: concurrent writers of one page and hour (late flushes,
        # the cleaner's compaction) then rarely wait on the same row.
        shards = [self._rng.randrange(self._num_shards) for _ in pages]
        site_shard = self._rng.randrange(self._num_shards)  # one per flush: its site rows are locked in key order
        return {"pages": pages, "hours": hours, "shards": shards, "views": views, "site_shard": site_shard}

    def _ensure_partitions(self, days: set[date]) -> None:
        missing = days - self._known_days
        if not missing:
            return
        # Its own short transaction: creating a partition locks page_views briefly, and
        # that lock must not be held for the length of a flush.
        with self._engine.begin() as connection:
            connection.execute(PARTITION_LOCK_TIMEOUT)
            for day in sorted(missing):
                if connection.execute(ENSURE_PARTITION, {"day": day}).scalar():
                    log.info("created partition", extra=fields(day=day.isoformat()))
        self._known_days |= missing


def _visitor_rows(counts: ViewCounts, visitors: VisitorIds) -> dict[str, list]:
    """Each visitor id with the (1-based) row of `counts` it belongs to; {} when there are none."""
    if not visitors:
        return {}
    rows, ids = [], []
    for row, key in enumerate(counts, 1):
        for visitor in visitors.get(key, ()):
            rows.append(row)
            ids.append(visitor)
    return {"visitor_rows": rows, "visitor_ids": ids} if ids else {}


def _without_expired(counts: ViewCounts, cutoff_epoch: int) -> tuple[ViewCounts, int]:
    if all(hour >= cutoff_epoch for _page, hour in counts):
        return counts, 0
    kept = {key: views for key, views in counts.items() if key[1] >= cutoff_epoch}
    return kept, sum(counts.values()) - sum(kept.values())
